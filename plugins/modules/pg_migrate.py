#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ierahkwa platform engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: pg_migrate
short_description: Apply ordered SQL migration files to a PostgreSQL database, each exactly once
version_added: 0.2.0
author: ierahkwa platform engineering (!UNKNOWN)
description:
  - Reads C(<version>_<name>.sql) files from a directory on the managed host and applies, in numeric order, those
    whose version the record table does not hold yet. Each applied file is recorded with its checksum.
  - By default every pending file and its record go in one transaction; a failing file rolls back the whole run
    and the recorded version stays where it was. O(transaction=per_file) commits file by file.
  - An advisory lock keeps two runs from applying the same file twice; the plan is made again under the lock.
  - Fails, naming the file, when an applied file was changed, when two files share a version, when a file is
    misnamed, or when a new file is older than the newest applied one (unless O(allow_out_of_order)).
  - In check mode nothing is executed; RV(pending) lists what would run.
requirements:
  - psycopg2
options:
  path:
    description: Directory holding the migration files on the managed host.
    type: path
    required: true
  db:
    description: Database to migrate.
    type: str
    required: true
    aliases: [login_db]
  session_role:
    description:
      - Role the migration SQL runs as (C(SET LOCAL ROLE)), so that what it creates belongs to the application's
        role and not to the login user. The record table is written as the login user.
    type: str
  table:
    description: Record table, C([schema.]name).
    type: str
    default: public.schema_migrations
  transaction:
    description: C(all) applies the run in one transaction, C(per_file) commits after each file.
    type: str
    choices: [all, per_file]
    default: all
  target_version:
    description: Apply versions up to this one only.
    type: int
  allow_out_of_order:
    description: Apply a pending file even when a newer version is applied already.
    type: bool
    default: false
  login_user:
    description: User to connect as (peer authentication on the socket when no password is given).
    type: str
    default: postgres
  login_password:
    description: Password of O(login_user).
    type: str
  login_host:
    description: Host to connect to; empty means the Unix socket.
    type: str
    default: ''
  login_unix_socket:
    description: Directory of the Unix socket.
    type: path
  port:
    description: Port of the server.
    type: int
    default: 5432
  connect_timeout:
    description: Seconds to wait for the connection.
    type: int
    default: 10
notes:
  - Statements that cannot run inside a transaction (C(CREATE INDEX CONCURRENTLY), C(VACUUM)) do not belong in
    these files.
"""

EXAMPLES = r"""
- name: Apply the application's migrations
  ierahkwa.platform.pg_migrate:
    path: /var/lib/ierahkwa/migrations
    db: ierahkwa
    session_role: ierahkwa
  become: true
  become_user: postgres

- name: Up to version 12 only, one transaction per file
  ierahkwa.platform.pg_migrate:
    path: /var/lib/ierahkwa/migrations
    db: ierahkwa
    target_version: 12
    transaction: per_file
"""

RETURN = r"""
applied:
  description: Files applied by this run, in order.
  returned: always
  type: list
  elements: str
  sample: [0003_add_index.sql]
pending:
  description: Files that would be applied (check mode), or that are left after a failure.
  returned: always
  type: list
  elements: str
current_version:
  description: Highest recorded version after the run (null before the first migration).
  returned: always
  type: int
  sample: 3
warnings:
  description:
    - Recorded versions whose file is gone, and a O(target_version) below the newest applied version.
    - They are given as Ansible warnings, so they are shown and land in the standard C(warnings) of the result.
  returned: when there are any
  type: list
  elements: str
  sample: ['version 3 (add_index) is recorded as applied but its file is gone']
"""

import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.ierahkwa.platform.plugins.module_utils.pg_migrate import (
    MigrationError,
    Migrator,
    discover,
    plan,
)

try:
    import psycopg2

    HAS_PSYCOPG2 = True
    PSYCOPG2_ERROR = None
except ImportError:
    HAS_PSYCOPG2 = False
    PSYCOPG2_ERROR = traceback.format_exc()


def connect(p):
    kwargs = {'dbname': p['db'], 'user': p['login_user'], 'port': p['port'], 'connect_timeout': p['connect_timeout']}
    if p['login_password']:
        kwargs['password'] = p['login_password']
    if p['login_host']:
        kwargs['host'] = p['login_host']
    elif p['login_unix_socket']:
        kwargs['host'] = p['login_unix_socket']
    kwargs['application_name'] = 'ierahkwa.platform.pg_migrate'
    kwargs['client_encoding'] = 'UTF8'  # the files are read as UTF-8, whatever the database's encoding
    return psycopg2.connect(**kwargs)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type='path', required=True),
            db=dict(type='str', required=True, aliases=['login_db']),
            session_role=dict(type='str'),
            table=dict(type='str', default='public.schema_migrations'),
            transaction=dict(type='str', choices=['all', 'per_file'], default='all'),
            target_version=dict(type='int'),
            allow_out_of_order=dict(type='bool', default=False),
            login_user=dict(type='str', default='postgres'),
            login_password=dict(type='str', no_log=True),
            login_host=dict(type='str', default=''),
            login_unix_socket=dict(type='path'),
            port=dict(type='int', default=5432),
            connect_timeout=dict(type='int', default=10),
        ),
        supports_check_mode=True,
    )
    if not HAS_PSYCOPG2:
        module.fail_json(msg=missing_required_lib('psycopg2'), exception=PSYCOPG2_ERROR)
    p = module.params
    result = dict(changed=False, applied=[], pending=[], current_version=None)
    try:
        migrations = discover(p['path'])
        conn = connect(p)
    except MigrationError as exc:
        module.fail_json(msg=str(exc), **result)
    except psycopg2.Error as exc:
        module.fail_json(msg='cannot connect to database %s: %s' % (p['db'], str(exc).strip()), **result)
    migrator = Migrator(conn, p['table'], p['session_role'])
    try:
        applied = migrator.read_applied()
        pending, warnings = plan(migrations, applied, p['target_version'], p['allow_out_of_order'])
        for warning in warnings:
            module.warn(warning)
        result.update(pending=[m.filename for m in pending], current_version=max(applied) if applied else None)
        if module.check_mode or not pending:
            result['changed'] = bool(pending)
            module.exit_json(**result)
        done = migrator.migrate(migrations, p['transaction'], p['target_version'], p['allow_out_of_order'])
        for warning in done.pop('warnings'):
            if warning not in warnings:
                module.warn(warning)
        result.update(done, changed=bool(done['applied']))
    except MigrationError as exc:
        result['applied'] = list(migrator.result_applied)
        try:
            applied = migrator.read_applied()
        except MigrationError:
            applied = None  # the connection is gone: what was pending before the run stays pending
        if applied is not None:
            target = p['target_version']
            result.update(
                pending=[
                    m.filename
                    for m in migrations
                    if m.version not in applied and (target is None or m.version <= target)
                ],
                current_version=max(applied) if applied else None,
            )
        module.fail_json(msg=str(exc), **result)
    except psycopg2.Error as exc:
        module.fail_json(msg='database %s: %s' % (p['db'], str(exc).strip()), **result)
    finally:
        conn.close()
    module.exit_json(**result)


if __name__ == '__main__':
    main()
