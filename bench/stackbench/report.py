"""The report: the table printed at the end and written with every sample as JSON."""

import json
import subprocess

from imagehost import ROOT

from stackbench.stores import DATABASE
from stackbench.web import ENDPOINTS, NO_POOL, SERVERS

RESULTS = ROOT / "bench" / "results"


def revision() -> str:
    """The checkout's git revision, marked -dirty when it has uncommitted changes."""
    return subprocess.run(
        ["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b else "-"


def pair_rows(what: str, unit: str, results: dict, digits: int = 0) -> list[str]:
    """Rows of bare against container (and against the socket path, where it was measured):
    median [min-max] and the ratio of the medians."""

    def cell(d: dict) -> str:
        return f"{d['median']:.{digits}f} [{d['min']:.{digits}f}-{d['max']:.{digits}f}]"

    paths = [where for where in ("container", "socket") if where in next(iter(results.values()))]
    header = f"{what:<24}{'bare ' + unit:>24}"
    for where in paths:
        header += f"{where + ' ' + unit:>26}{where + '/bare':>16}"
    rows = [header]
    for name, pair in results.items():
        b = pair["bare"]
        row = f"{name:<24}{cell(b):>24}"
        for where in paths:
            row += f"{cell(pair[where]):>26}{ratio(pair[where]['median'], b['median']):>16}"
        rows.append(row)
    return rows


def cpu_cell(cell: dict) -> str:
    """The server's CPU seconds per 1,000 requests (median), from runs that measured it."""
    cpu = cell.get("cpu_ms_per_1k")
    return f"{cpu['median'] / 1000:.2f}" if cpu else "-"


def pool_rows(w: dict) -> list[str]:
    """The deployed server on its path with its database pool and with none, side by side."""
    by_path = w["results"]["/trading/heartbeats/"].get(w.get("deployed", ""), {})
    if NO_POOL not in by_path:
        return []
    simple = w["results"]["/health/simple/"][w["deployed"]][w["deployed_path"]]["rps"]["median"]
    rows = [
        "",
        f"Database pool (DB_POOL_MAX_SIZE): {w['deployed_server']} via {w['deployed_path']},"
        f" with its pool of {w['pool_size']} per process and with none",
        f"{'endpoint':<21}{'pool':<8}{'req/s':>8} {'[min-max]':<13}{'p50 ms':>7}{'p99 ms':>7}"
        f"{'vs no pool':>12}{'vs /health/simple/':>20}{'CPU s/1k':>10}{'failed':>8}",
    ]
    for endpoint in ENDPOINTS:
        cells = w["results"][endpoint][w["deployed"]]
        off = cells[NO_POOL]["rps"]["median"]
        for label, cell in (("on", cells[w["deployed_path"]]), ("off", cells[NO_POOL])):
            rps = cell["rps"]
            rows.append(
                f"{endpoint:<21}{label:<8}{rps['median']:>8.0f}"
                f" {f'[{rps["min"]:.0f}-{rps["max"]:.0f}]':<13}"
                f"{cell['p50_ms']['median']:>7.0f}{cell['p99_ms']['median']:>7.0f}"
                f"{ratio(rps['median'], off):>12}{ratio(rps['median'], simple):>20}"
                f"{cpu_cell(cell):>10}{cell['failed']:>8.0f}"
            )
    return rows


def celery_rows(c: dict) -> list[str]:
    """The Celery round trip, bare against container."""
    header = (
        f"Celery: core.tasks.ping, {c['sequential']} one at a time (round trip ms) and"
        f" {c['batch']} at once (tasks/s), worker concurrency {c['concurrency']},"
        f" {c['rounds']} rounds; container = web container -> stack Redis -> deployed"
        " worker, bare = the same code on the host -> bare Redis -> bare worker"
    )
    figures = {
        name: {path: c["results"][path][key] for path in ("bare", "container")}
        for name, key in (
            ("tasks/s", "tasks_per_s"),
            ("round trip p50 ms", "p50_ms"),
            ("round trip p99 ms", "p99_ms"),
        )
    }
    return ["", header, *pair_rows("figure", "", figures, digits=1)]


def edge_rows(e: dict) -> list[str]:
    """The edge against the web socket it proxies to, for each endpoint."""
    rows = [
        "",
        f"Edge: ApacheBench -n {e['requests']} -c {e['concurrency']} (Host {e['name']}),"
        f" {e['rounds']} rounds; socket = the web socket directly, edge = HTTPS through the"
        " edge, a new connection (and TLS handshake) per request; keep-alive = wrk -c"
        f" {e['concurrency']} for 10 s over HTTP/1.1 connections kept open; CPU s/1k: the web"
        " and edge units together",
        f"{'endpoint':<40}{'path':<17}{'req/s':>8} {'[min-max]':<13}{'p50 ms':>7}{'p99 ms':>7}"
        f"{'vs socket':>11}{'CPU s/1k':>10}{'failed':>8}",
    ]
    for endpoint, by_path in e["results"].items():
        socket = by_path["socket"]["rps"]["median"]
        for path, cell in by_path.items():
            rps = cell["rps"]
            rows.append(
                f"{endpoint:<40}{path:<17}{rps['median']:>8.0f}"
                f" {f'[{rps["min"]:.0f}-{rps["max"]:.0f}]':<13}"
                f"{cell['p50_ms']['median']:>7.0f}{cell['p99_ms']['median']:>7.0f}"
                f"{ratio(rps['median'], socket):>11}{cpu_cell(cell):>10}{cell['failed']:>8.0f}"
            )
    return rows


def websocket_rows(ws: dict) -> list[str]:
    """Connections held open to the deployed server, and the broadcasts' arrival."""
    return [
        "",
        "WebSockets to the deployed web server:"
        f" {ws['opened']} of {ws['connections']} open in {ws['open_seconds']:.1f} s"
        f" ({ws['errors']} errors), {ws['memory_per_connection_kb']:.0f} KB of the web unit's"
        f" memory per connection ({ws['memory_source']})",
        f"  {ws['broadcasts']} broadcasts: {ws['delivered']} of {ws['expected']} delivered,"
        f" sent to arrival p50 {ws['p50_ms']:.1f} ms, p99 {ws['p99_ms']:.1f} ms,"
        f" max {ws['max_ms']:.1f} ms (the kernel's receive time); first to last arrival of one"
        f" broadcast, median {ws['spread_median_ms']:.1f} ms; as the client got round to them"
        f" p50 {ws['seen_p50_ms']:.1f} ms, p99 {ws['seen_p99_ms']:.1f} ms",
        f"  the web workers' CPU: {ws['cpu_ms_per_broadcast']:.0f} ms per broadcast"
        f" ({ws['cpu_seconds']:.2f} s for {ws['broadcasts']} and {ws['other_broadcasts']} other)",
    ]


def web_rows(w: dict) -> list[str]:
    """Each web server bare, published and through its socket."""
    out = [""]
    out.append(
        f"Web: ApacheBench -n {w['requests']} -c {w['concurrency']} -t {w['time_limit']}"
        f" (no keep-alive), {w['rounds']} rounds; median [min-max]; stack web server:"
        f" {w['deployed_server']} via {w['deployed_path']}; CPU s/1k: the server's CPU seconds"
        " (its cgroup, every core) per 1,000 requests"
    )
    out.append(
        f"{'endpoint':<21}{'server':<18}{'path':<11}{'req/s':>8} {'[min-max]':<13}"
        f"{'p50 ms':>7}{'p99 ms':>7}{'vs bare':>9}{'vs Daphne':>11}{'CPU s/1k':>10}{'failed':>8}"
    )
    for endpoint in ENDPOINTS:
        for server in SERVERS:
            for path in w["paths"]:
                cell = w["results"][endpoint][server][path]
                rps = cell["rps"]
                bare = w["results"][endpoint][server]["bare"]["rps"]["median"]
                daphne = w["results"][endpoint]["daphne"][path]["rps"]["median"]
                out.append(
                    f"{endpoint:<21}{SERVERS[server][0]:<18}{path:<11}{rps['median']:>8.0f}"
                    f" {f'[{rps["min"]:.0f}-{rps["max"]:.0f}]':<13}"
                    f"{cell['p50_ms']['median']:>7.0f}{cell['p99_ms']['median']:>7.0f}"
                    f"{ratio(rps['median'], bare):>9}{ratio(rps['median'], daphne):>11}"
                    f"{cpu_cell(cell):>10}{cell['failed']:>8.0f}"
                )
    out.extend(pool_rows(w))
    return out


def pgbouncer_rows(p: dict) -> list[str]:
    """The bare app with Django's pool against the same app without one through PgBouncer."""
    pool = p["results"]["pool"]["rps"]["median"]
    rows = [
        "",
        f"Django's pool against PgBouncer: {p['endpoint']}, the bare app (Gunicorn+uvicorn,"
        f" {p['workers']} workers), ApacheBench -n {p['requests']} -c {p['concurrency']}"
        f" -t {p['time_limit']}, {p['rounds']} rounds alternating; pool = psycopg's pool of"
        f" {p['pool_size']} per worker, pgbouncer = no pool (a connection per request) through"
        f" {p['pgbouncer_version']}, transaction pooling, {p['pgbouncer_pool_size']} server"
        " connections; CPU s/1k: web = the app's cgroup, bouncer = PgBouncer's, server = the"
        " two together, PostgreSQL = the database's (not in server)",
        f"{'path':<11}{'req/s':>8} {'[min-max]':<13}{'p50 ms':>7}{'p99 ms':>7}{'vs pool':>9}"
        f"{'web':>7}{'bouncer':>9}{'server':>8}{'PostgreSQL':>12}{'failed':>8}",
    ]
    for path, cell in p["results"].items():
        rps = cell["rps"]

        def cpu(key: str, cell: dict = cell) -> str:
            return f"{cell[key]['median'] / 1000:.2f}"

        rows.append(
            f"{path:<11}{rps['median']:>8.0f} {f'[{rps["min"]:.0f}-{rps["max"]:.0f}]':<13}"
            f"{cell['p50_ms']['median']:>7.0f}{cell['p99_ms']['median']:>7.0f}"
            f"{ratio(rps['median'], pool):>9}{cpu('web_cpu_ms_per_1k'):>7}"
            f"{cpu('pgbouncer_cpu_ms_per_1k'):>9}{cpu('cpu_ms_per_1k'):>8}"
            f"{cpu('postgres_cpu_ms_per_1k'):>12}{cell['failed']:>8.0f}"
        )
    return rows


def rebuild_rows(b: dict) -> list[str]:
    """A code-only rebuild: each phase, then each build step that ran again."""
    res = b["results"]

    def cell(key: str) -> str:
        d = res[key]
        return f"{d['median']:>6.1f} [{d['min']:.1f}-{d['max']:.1f}]"

    rows = [
        "",
        f"Code-only rebuild: {b['changed_file']} changed, committed, archived, copied to the host"
        f" and built with the layer cache as the image role does, {b['rounds']} rounds; seconds,"
        " median [min-max]",
        f"  through the image role (ansible)  {cell('role_seconds')}",
        f"  directly: change to new image     {cell('total_seconds')}",
        f"    commit                          {cell('commit_seconds')}",
        f"    git archive (app/, docker/)     {cell('archive_seconds')}"
        f"  ({b['archive_bytes'] / 1e6:.1f} MB)",
        f"    copy to the host                {cell('copy_seconds')}",
        f"    unpack as the service user      {cell('unpack_seconds')}",
        f"    podman build                    {cell('build_seconds')}",
    ]
    tasks = sorted(b.get("role_tasks", {}).items(), key=lambda t: -t[1]["median"])
    if tasks:
        rest = sum(t["median"] for _, t in tasks[8:])
        rows.append("  the role's costliest tasks (median s):")
        rows += [f"    {t['median']:>5.1f}  {name[:80]}" for name, t in tasks[:8]]
        rows.append(f"    {rest:>5.1f}  the other {len(tasks) - 8} tasks")
    rows.append("  build steps of the direct path that ran again, or took 0.5 s or more:")
    for step in b["steps"]:
        if step["ran"] or step["seconds"]["median"] >= 0.5:
            d = step["seconds"]
            mark = "" if step["ran"] else " (cached)"
            rows.append(f"    {d['median']:>5.1f} s  {step['instruction'][:80]}{mark}")
    return rows


def table(r: dict) -> str:
    out = []
    m = r["machine"]
    out.append(
        f"Senex Trader stack benchmark, {r['date']}, host {r['host']} ({m['cores']} cores,"
        f" shared), git {r['revision']}"
    )
    out.append(
        f"load average (1/5/15 min): before {m['load_before']}, after web {m['load_after_web']},"
        f" at the end {m['load_end']}"
    )
    if "web" in r:
        out.extend(web_rows(r["web"]))
    if "edge" in r:
        out.extend(edge_rows(r["edge"]))
    if "postgres" in r:
        p = r["postgres"]
        header = (
            f"PostgreSQL {p['version']}: pgbench scale {p['scale']}, {p['clients']} clients,"
            f" {p['rounds']} rounds; bare = host to bare server on loopback, container = a"
            f" container on the stack's network to {DATABASE}, socket = a container to its Unix"
            " socket in the directory the app's containers mount"
        )
        out += ["", header, *pair_rows("workload", "TPS", p["results"])]
    if "redis" in r:
        d = r["redis"]
        header = (
            f"Redis {d['version']}: redis-benchmark -n {d['requests']} -c {d['clients']},"
            f" {d['rounds']} rounds; same paths as PostgreSQL"
        )
        out += ["", header, *pair_rows("command", "req/s", d["results"])]
    if "celery" in r:
        out.extend(celery_rows(r["celery"]))
    if "websockets" in r:
        out.extend(websocket_rows(r["websockets"]))
    if "pgbouncer" in r:
        out.extend(pgbouncer_rows(r["pgbouncer"]))
    if "rebuild" in r:
        out.extend(rebuild_rows(r["rebuild"]))
    mem = r["memory"]
    out.append("")
    out.append(f"Memory, idle after start ({mem['source']})")
    for unit, value in mem["units"].items():
        out.append(f"  {unit:<28}{value / 1e6:>8.1f} MB")
    out.append(f"  {'whole stack':<28}{mem['total'] / 1e6:>8.1f} MB")
    dep = r["deployment"]
    out.append("")
    out.append("Deployment")
    out.append(
        f"  image: {dep['image']['total_bytes'] / 1e6:.1f} MB total,"
        f" {dep['image']['above_base_bytes'] / 1e6:.1f} MB above the base"
        f" ({dep['image']['base_bytes'] / 1e6:.1f} MB)"
    )
    if "deploy_seconds" not in dep:
        out.append("  (an already deployed host was reused: no deployment timings)")
        return "\n".join(out)
    out.append(f"  bare test host booted (SSH answering): {dep['host_create_seconds']:.1f} s")
    out.append(
        f"  bare host -> healthy stack (deploy incl. image build): {dep['deploy_seconds']:.1f} s,"
        f" changed={dep['deploy_changed']}"
    )
    out.append(
        f"  no-op re-deploy: {dep['redeploy_seconds']:.1f} s, changed={dep['redeploy_changed']}"
    )
    if dep.get("redeploy_slowest"):
        out.append("  where the no-op re-deploy's seconds go (its slowest tasks):")
        for name, seconds in dep["redeploy_slowest"]:
            out.append(f"    {seconds:6.2f} s  {name}")
    return "\n".join(out)


def write(report: dict, stamp: str) -> None:
    """Writes the report as JSON and as the table into bench/results/, and prints the table."""
    text = table(report)
    (RESULTS / f"stack-{stamp}.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / f"stack-{stamp}.txt").write_text(text + "\n")
    print()
    print(text)
    print(f"\nWritten: {RESULTS / f'stack-{stamp}.json'}")
