# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.ierahkwa.platform.plugins.module_utils import pg_migrate as pm


def write(d, name, text='SELECT 1;'):
    (d / name).write_text(text)


class FakeDB(object):
    """Just enough of PostgreSQL for the migrator: a record table with transactions, and SQL that may fail."""

    def __init__(self, fail_on=()):
        self.committed = {}
        self.table = False
        self.fail_on = fail_on
        self.executed = []
        self.commits = 0
        self._reset()

    def _reset(self):
        self.pending_rows = dict(self.committed)
        self.pending_table = self.table

    def cursor(self):
        return FakeCursor(self)

    def commit(self):
        self.committed = dict(self.pending_rows)
        self.table = self.pending_table
        self.commits += 1

    def rollback(self):
        self._reset()


class FakeCursor(object):
    def __init__(self, db):
        self.db = db
        self.rows = []

    def execute(self, sql, args=None):
        db = self.db
        db.executed.append(sql)
        if sql.startswith('SELECT to_regclass'):
            self.rows = [(db.pending_table,)]
        elif sql.startswith('CREATE TABLE IF NOT EXISTS'):
            db.pending_table = True
        elif sql.startswith('SELECT version, name, checksum'):
            self.rows = [(v, n, c) for v, (n, c) in db.pending_rows.items()]
        elif sql.startswith('INSERT INTO "public"."schema_migrations"'):
            db.pending_rows[args[0]] = (args[1], args[2])
        elif any(marker in sql for marker in db.fail_on):
            raise RuntimeError('relation "nowhere" does not exist')

    def fetchone(self):
        return self.rows[0]

    def fetchall(self):
        return self.rows


def test_discover_orders_numerically_and_checks_names(tmp_path):
    write(tmp_path, '10_ten.sql')
    write(tmp_path, '2-two.sql')
    write(tmp_path, 'README.md')
    got = pm.discover(str(tmp_path))
    assert [(m.version, m.name) for m in got] == [(2, 'two'), (10, 'ten')]
    assert len(got[0].checksum) == 64


def test_discover_refuses_duplicates_and_bad_names(tmp_path):
    write(tmp_path, '0001_a.sql')
    write(tmp_path, '1_b.sql')
    with pytest.raises(pm.MigrationError, match='0001_a.sql and 1_b.sql have the same version 1'):
        pm.discover(str(tmp_path))
    (tmp_path / '1_b.sql').unlink()
    write(tmp_path, 'create_users.sql')
    with pytest.raises(pm.MigrationError, match='create_users.sql: a migration file is named'):
        pm.discover(str(tmp_path))


def test_plan_pending_drift_out_of_order_and_target(tmp_path):
    for n in ('1_a.sql', '2_b.sql', '3_c.sql'):
        write(tmp_path, n)
    ms = pm.discover(str(tmp_path))
    pending, warnings = pm.plan(ms, {1: ('a', ms[0].checksum)})
    assert [m.filename for m in pending] == ['2_b.sql', '3_c.sql'] and warnings == []
    assert [m.filename for m in pm.plan(ms, {}, target_version=2)[0]] == ['1_a.sql', '2_b.sql']
    with pytest.raises(pm.MigrationError, match='1_a.sql was changed after it was applied'):
        pm.plan(ms, {1: ('a', 'other')})
    with pytest.raises(pm.MigrationError, match='2_b.sql \\(version 2\\) is older than the newest applied version 3'):
        pm.plan(ms, {1: ('a', ms[0].checksum), 3: ('c', ms[2].checksum)})
    assert pm.plan(ms, {1: ('a', ms[0].checksum), 3: ('c', ms[2].checksum)}, allow_out_of_order=True)[0][0].version == 2
    assert pm.plan(ms, {9: ('gone', 'x')}, allow_out_of_order=True)[1] == [
        'version 9 (gone) is recorded as applied but its file is gone'
    ]


def test_apply_once_then_nothing(tmp_path):
    write(tmp_path, '1_a.sql', 'CREATE TABLE a ();')
    write(tmp_path, '2_b.sql', 'CREATE TABLE b ();')
    db = FakeDB()
    ms = pm.discover(str(tmp_path))
    first = pm.Migrator(db).migrate(ms)
    assert first['applied'] == ['1_a.sql', '2_b.sql'] and first['current_version'] == 2
    again = pm.Migrator(db).migrate(ms)
    assert again['applied'] == [] and sorted(db.committed) == [1, 2]
    assert db.executed.count('CREATE TABLE a ();') == 1


def test_a_failure_rolls_back_the_whole_run_in_mode_all(tmp_path):
    write(tmp_path, '1_a.sql', 'CREATE TABLE a ();')
    write(tmp_path, '2_bad.sql', 'INSERT INTO nowhere VALUES (1);')
    db = FakeDB(fail_on=('nowhere',))
    m = pm.Migrator(db)
    with pytest.raises(pm.MigrationError, match='2_bad.sql failed, nothing of it was kept: relation "nowhere"'):
        m.migrate(pm.discover(str(tmp_path)))
    assert db.committed == {} and m.result_applied == []


def test_per_file_keeps_the_files_before_the_failure(tmp_path):
    write(tmp_path, '1_a.sql', 'CREATE TABLE a ();')
    write(tmp_path, '2_bad.sql', 'INSERT INTO nowhere VALUES (1);')
    db = FakeDB(fail_on=('nowhere',))
    m = pm.Migrator(db)
    with pytest.raises(pm.MigrationError):
        m.migrate(pm.discover(str(tmp_path)), mode='per_file')
    assert sorted(db.committed) == [1] and m.result_applied == ['1_a.sql']


def test_session_role_and_lock(tmp_path):
    write(tmp_path, '1_a.sql', 'CREATE TABLE a ();')
    db = FakeDB()
    pm.Migrator(db, session_role='app').migrate(pm.discover(str(tmp_path)))
    assert db.executed[0].startswith('SELECT pg_advisory_xact_lock')
    i = db.executed.index('CREATE TABLE a ();')
    assert db.executed[i - 1] == 'SET LOCAL ROLE "app"' and db.executed[i + 1] == 'RESET ROLE'


@pytest.mark.parametrize('table', ['Bad.Name', 'a;drop', '', 'x.y.z'])
def test_record_table_names_are_checked(table):
    with pytest.raises(pm.MigrationError, match='must be \\[schema.\\]name'):
        pm.split_table(table)


def test_lock_key_is_a_signed_64_bit_constant():
    k = pm.lock_key('public.schema_migrations')
    assert k == pm.lock_key('public.schema_migrations') and -(1 << 63) <= k < (1 << 63)
    with pytest.raises(pm.MigrationError, match='transaction must be one of'):
        pm.Migrator(FakeDB()).migrate([], mode='sometimes')


# -- psycopg2's behaviour: error diagnostics, transaction status, session settings ------------------------------


class PgError(Exception):
    """What psycopg2 raises: ``pgerror``, ``pgcode`` and ``diag``."""

    def __init__(self, primary, position=None, hint=None):
        super().__init__(primary)
        self.pgerror = 'ERROR:  %s\nLINE 2: ...nowhere...\n           ^\n' % primary
        self.pgcode = '42P01'
        self.diag = type(
            'Diag',
            (),
            {'message_primary': primary, 'message_detail': None, 'message_hint': hint, 'statement_position': position},
        )()


class PsycopgLikeDB(FakeDB):
    """FakeDB plus set_session and get_transaction_status; SQL naming ``nowhere`` fails like PostgreSQL."""

    def __init__(self, after_commit=None):
        super().__init__()
        self.sessions, self.status, self.inserts, self.after_commit = [], 2, [], after_commit

    def cursor(self):
        return PsycopgLikeCursor(self)

    def set_session(self, **kwargs):
        self.sessions.append(kwargs)

    def get_transaction_status(self):
        return self.status

    def commit(self):
        super().commit()
        if self.after_commit:
            self.after_commit(self)
        self._reset()  # the next transaction sees what others committed

    def rollback(self):
        super().rollback()
        self.status = 2
        self.rollbacks = getattr(self, 'rollbacks', 0) + 1


class PsycopgLikeCursor(FakeCursor):
    def execute(self, sql, args=None):
        if 'nowhere' in sql:
            self.db.executed.append(sql)
            raise PgError('relation "nowhere" does not exist', position=str(sql.index('nowhere') + 1), hint='a hint')
        if sql.rstrip().endswith('COMMIT;'):
            self.db.status = 0  # TRANSACTION_STATUS_IDLE: the file ended the module's transaction
        if sql.startswith('INSERT INTO'):
            self.db.inserts.append(args)
        super().execute(sql, args)


def test_failure_names_file_line_and_postgres_message_but_not_the_sql(tmp_path):
    write(tmp_path, '1_a.sql', 'CREATE TABLE a ();')
    write(tmp_path, '2_bad.sql', 'CREATE TABLE audit (id int);\nINSERT INTO nowhere VALUES (1);\n')
    db = PsycopgLikeDB()
    with pytest.raises(pm.MigrationError) as exc:
        pm.Migrator(db).migrate(pm.discover(str(tmp_path)))
    assert str(exc.value) == (
        'migration 2_bad.sql failed, nothing of it was kept: relation "nowhere" does not exist; HINT: a hint '
        '(SQLSTATE 42P01, line 2); rolled back with 1_a.sql: nothing of this run is recorded'
    )
    assert db.committed == {} and db.commits == 0 and db.rollbacks == 1 and db.pending_rows == {}


def test_describe_error_without_diag_takes_the_first_line_of_pgerror():
    err = Exception('x')
    err.pgerror = 'ERROR:  syntax error at or near "SELEC"\nLINE 3: SELEC 1;\n        ^\n'
    assert pm.describe_error(err) == 'syntax error at or near "SELEC" (line 3)'
    assert pm.describe_error(RuntimeError('server closed the connection\nunexpectedly')) == (
        'server closed the connection'
    )


def test_a_file_that_commits_by_itself_is_refused(tmp_path):
    write(tmp_path, '1_c.sql', 'CREATE TABLE c ();\nCOMMIT;')
    with pytest.raises(pm.MigrationError, match='1_c.sql ended the transaction itself'):
        pm.Migrator(PsycopgLikeDB()).migrate(pm.discover(str(tmp_path)))


def test_each_transaction_plans_again_under_the_lock(tmp_path):
    for name in ('1_a.sql', '2_b.sql', '3_c.sql'):
        write(tmp_path, name, 'CREATE TABLE %s ();' % name[2])
    ms = pm.discover(str(tmp_path))

    def another_run_applies_2(db):  # between our first and second transaction
        db.committed.setdefault(2, ('b', ms[1].checksum))

    db = PsycopgLikeDB(after_commit=another_run_applies_2)
    result = pm.Migrator(db).migrate(ms, mode='per_file')
    assert result['applied'] == ['1_a.sql', '3_c.sql'] and result['current_version'] == 3
    assert 'CREATE TABLE b ();' not in db.executed
    assert [s.split('(')[0] for s in db.executed[:3]] == [
        'SELECT pg_advisory_xact_lock',
        'CREATE TABLE IF NOT EXISTS "public"."schema_migrations" ',
        'SELECT version, name, checksum FROM "public"."schema_migrations" ORDER BY version',
    ]
    assert db.sessions == [{'isolation_level': 'READ COMMITTED'}]


def test_all_commits_once_and_per_file_once_per_file(tmp_path):
    for name in ('1_a.sql', '2_b.sql', '3_c.sql'):
        write(tmp_path, name, 'CREATE TABLE %s ();' % name[2])
    ms = pm.discover(str(tmp_path))
    db = PsycopgLikeDB()
    pm.Migrator(db).migrate(ms)
    assert db.commits == 1 and db.executed.count('SELECT pg_advisory_xact_lock(%s)') == 1
    db = PsycopgLikeDB()
    pm.Migrator(db).migrate(ms, mode='per_file')
    assert db.commits == 4 and db.executed.count('SELECT pg_advisory_xact_lock(%s)') == 4  # the last finds nothing


def test_records_carry_version_name_checksum_and_milliseconds(tmp_path):
    write(tmp_path, '0007_add_index.sql', 'CREATE INDEX i ON a (x);')
    ms = pm.discover(str(tmp_path))
    db = PsycopgLikeDB()
    ticks = iter([10.0, 10.25])
    pm.Migrator(db, clock=lambda: next(ticks)).migrate(ms)
    assert db.inserts == [(7, 'add_index', ms[0].checksum, 250)]


def test_read_applied_creates_nothing(tmp_path):
    db = PsycopgLikeDB()
    m = pm.Migrator(db, 'ops.migrations')
    assert m.read_applied() == {} and m.current_version() is None
    assert not any(s.startswith('CREATE') for s in db.executed)
    assert db.executed[0] == 'SELECT to_regclass(%s)' and m.table == '"ops"."migrations"'


def test_discover_refuses_what_would_be_skipped_or_cannot_run(tmp_path):
    (tmp_path / '3_dir.sql').mkdir()  # directories are not migrations
    write(tmp_path, 'notes.txt', 'x')
    assert pm.discover(str(tmp_path)) == []
    write(tmp_path, '0001_a.SQL')
    with pytest.raises(pm.MigrationError, match='0001_a.SQL: a migration file is named'):
        pm.discover(str(tmp_path))
    (tmp_path / '0001_a.SQL').unlink()
    write(tmp_path, '0002_empty.sql', ' \n')
    with pytest.raises(pm.MigrationError, match='0002_empty.sql: the file is empty'):
        pm.discover(str(tmp_path))
    (tmp_path / '0002_empty.sql').write_bytes(b'SELECT \xff;')
    with pytest.raises(pm.MigrationError, match='0002_empty.sql: not UTF-8 text'):
        pm.discover(str(tmp_path))
    with pytest.raises(pm.MigrationError, match='cannot read the migration directory'):
        pm.discover(str(tmp_path / 'missing'))


def test_plan_reports_every_problem_and_warns_about_a_low_target(tmp_path):
    for n in ('1_a.sql', '2_b.sql', '3_c.sql'):
        write(tmp_path, n)
    ms = pm.discover(str(tmp_path))
    with pytest.raises(pm.MigrationError) as exc:
        pm.plan(ms, {1: ('a', 'old'), 3: ('c', ms[2].checksum)})
    assert str(exc.value).count('; ') == 1 and '1_a.sql was changed' in str(exc.value)
    assert '2_b.sql (version 2) is older' in str(exc.value)
    pending, warnings = pm.plan(ms, {1: ('a', ms[0].checksum), 2: ('b', ms[1].checksum)}, target_version=1)
    assert pending == []
    assert warnings == ['target_version 1 is below the newest applied version 2: migrations are never reverted']


def test_table_defaults_to_public_and_lock_key_is_pinned():
    assert pm.split_table('schema_migrations') == ('public', 'schema_migrations')
    # The key must not change between releases, or an old and a new run could migrate at the same time.
    assert pm.lock_key('public.schema_migrations') == -5879981832751176878
    assert pm.lock_key('ops.schema_migrations') != pm.lock_key('public.schema_migrations')
