"""Filters of deploy.yml's inventory checks (Ansible loads filter_plugins/ next to a playbook)."""

import difflib


def closest_name(name: str, known: list[str]) -> str:
    """The known name most like `name`, else "": difflib's similarity ratio, at least 0.8 (a
    letter or two wrong in a name of 20 scores above 0.9; senex_zzz and senex_user score 0.63)."""
    matches = difflib.get_close_matches(str(name), [str(each) for each in known], n=1, cutoff=0.8)
    return matches[0] if matches else ""


class FilterModule:
    def filters(self) -> dict:
        return {"closest_name": closest_name}
