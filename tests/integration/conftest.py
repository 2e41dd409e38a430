"""Fixtures of the integration tests: the Vault stand-in over HTTP and HTTPS (and a real Vault when configured), and
the environment of a playbook run against this checkout."""

import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

from vault_backends import make_certs, real_backend, real_backend_at, standin_backend  # noqa: E402
from vault_standin import VaultStandin  # noqa: E402


@pytest.fixture(scope='session')
def certs(tmp_path_factory):
    return make_certs(tmp_path_factory.mktemp('certs'))


@pytest.fixture(scope='session')
def collections_tree(tmp_path_factory):
    """An ansible_collections tree whose ierahkwa.platform is this checkout (whichever worktree runs the tests)."""
    root = tmp_path_factory.mktemp('collections')
    ns = root / 'ansible_collections' / 'ierahkwa'
    ns.mkdir(parents=True)
    (ns / 'platform').symlink_to(REPO)
    return str(root)


@pytest.fixture
def playbook_env(collections_tree):
    """Environment of an ansible-playbook run on this machine with this checkout as ierahkwa.platform: none of the
    caller's ANSIBLE_* settings, no colour, no retry files, this Python."""
    env = {k: v for k, v in os.environ.items() if not k.startswith('ANSIBLE_')}
    env.update(
        ANSIBLE_COLLECTIONS_PATH=collections_tree,
        ANSIBLE_NOCOLOR='1',
        ANSIBLE_FORCE_COLOR='0',
        ANSIBLE_PYTHON_INTERPRETER=os.path.realpath(sys.executable),
        ANSIBLE_RETRY_FILES_ENABLED='0',
    )
    return env


@pytest.fixture(params=['standin-http', 'standin-https', 'standin-as-real', 'real'])
def vault(request, certs):
    """standin-as-real: the stand-in prepared only through the Vault API, by the code that prepares a real Vault
    (so that code runs in CI too); real: a real Vault, when VAULT_ADDR and VAULT_TOKEN are set."""
    if request.param == 'real':
        yield real_backend()
        return
    if request.param == 'standin-as-real':
        server = VaultStandin('hvs.standin-as-real-root').start()
        yield real_backend_at(server.url, 'hvs.standin-as-real-root')
        server.stop()
        return
    tls = (certs['server'], certs['server_key'], certs['ca']) if request.param == 'standin-https' else None
    backend = standin_backend(request.param, tls)
    yield backend
    backend.standin.stop()


@pytest.fixture
def standin(certs):
    """The stand-in over HTTP alone, for what only it can do (seal, fail on purpose, count requests)."""
    backend = standin_backend('standin-http')
    yield backend
    backend.standin.stop()


# the lab end-to-end tests' session fixtures
from lab_fixtures import converged, lab  # noqa: E402,F401  # pylint: disable=unused-import
