# -*- coding: utf-8 -*-
"""Stand-in for ansible-test's get-pip bootstrap script, for machines that reach PyPI but not
ci-files.testing.ansible.com. ansible-test runs it inside each new sanity venv with pip-install
arguments (packages such as pip==24.2). It seeds pip from the interpreter's own ensurepip wheel,
then lets that pip install the requested versions from the package index. ansible-test runs pip with a
reduced environment, so the system CA bundle (which a TLS-intercepting proxy may need) is written into the
venv's own pip.conf.
"""

from __future__ import absolute_import, division, print_function

import ensurepip
import os
import subprocess
import sys

CA_BUNDLES = ('/etc/ssl/certs/ca-certificates.crt', '/etc/pki/tls/certs/ca-bundle.crt')


def main():
    args = [a for a in sys.argv[1:] if a not in ('--no-setuptools', '--no-wheel')]
    bundle = next((b for b in CA_BUNDLES if os.path.exists(b)), None)
    if bundle:
        with open(os.path.join(sys.prefix, 'pip.conf'), 'w') as f:
            f.write('[global]\ncert = %s\n' % bundle)
    ensurepip.bootstrap(upgrade=True)
    cert = ['--cert', bundle] if bundle else []
    subprocess.check_call([sys.executable, '-m', 'pip', 'install', '--upgrade', '--quiet'] + cert + args)  # noqa: S603


if __name__ == '__main__':
    main()
