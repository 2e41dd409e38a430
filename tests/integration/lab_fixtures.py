"""Fixtures of the lab end-to-end tests: one lab for the whole session, converged once by site.yml."""

import pytest
from labkit import HOSTS, REUSE, playbook, problems, recap


@pytest.fixture(scope="session")
def lab():
    if REUSE:
        yield
        return
    # start from bare hosts even if an interrupted run left this lab behind
    playbook("lab/lab.yml", "-e", "lab_state=absent", log="lab-clean")
    r = playbook("lab/lab.yml", log="lab-up")
    assert r.returncode == 0, problems(r)
    yield
    playbook("lab/lab.yml", "-e", "lab_state=absent", log="lab-down")


@pytest.fixture(scope="session")
def converged(lab):
    if REUSE:
        return None
    r = playbook("playbooks/site.yml", log="site-1")
    assert r.returncode == 0, problems(r)
    stats = recap(r.stdout)
    assert sorted(stats) == HOSTS
    assert all(s["failed"] == 0 and s["unreachable"] == 0 for s in stats.values())
    assert all(s["changed"] > 0 for s in stats.values()), "a fresh lab host must be changed by the first run"
    return r
