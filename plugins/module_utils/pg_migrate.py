# -*- coding: utf-8 -*-
# Copyright: ierahkwa platform engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ordered SQL migrations, each applied exactly once: the logic of the pg_migrate module.

``discover`` reads the ``NNNN_name.sql`` files of a directory, ``plan`` compares them with the records
(version -> (name, sha256 checksum)) and ``Migrator`` reads the record table and applies what is pending on a
DB-API 2 connection (psycopg2 style, autocommit off).

Every transaction of ``Migrator.migrate`` starts with ``pg_advisory_xact_lock`` on a key derived from the record
table, creates the table if it is missing and reads the records again under the lock, so two runs at the same
time cannot apply one file twice. A failing file is rolled back with the rest of its transaction: the whole run
(``all``) or that file alone (``per_file``).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import collections
import hashlib
import os
import re
import time

FILE_PATTERN = re.compile(r'^(\d+)[_-]+(.+)\.sql$')
IDENTIFIER = re.compile(r'^[a-z_][a-z0-9_]{0,62}$')
MODES = ('all', 'per_file')
MAX_VERSION = 2**63 - 1  # the record table's version is a bigint
LOCK_NAMESPACE = b'ierahkwa.platform pg_migrate:'
TRANSACTION_STATUS_INTRANS = 2  # psycopg2.extensions.TRANSACTION_STATUS_INTRANS

Migration = collections.namedtuple('Migration', ('version', 'name', 'filename', 'checksum', 'sql'))


class MigrationError(Exception):
    """A migration cannot be planned or applied; the message names the file."""


def discover(path):
    """The migration files of a directory, ordered by version.

    Files that do not end in ``.sql`` are ignored; a ``.sql`` file whose name does not match ``NNNN_name.sql``
    is an error, so that a typo cannot skip a migration silently.
    """
    try:
        names = sorted(os.listdir(path))
    except OSError as exc:
        raise MigrationError('cannot read the migration directory %s: %s' % (path, exc.strerror or exc)) from exc
    found = {}
    for filename in names:
        full = os.path.join(path, filename)
        if not filename.lower().endswith('.sql') or not os.path.isfile(full):
            continue
        match = FILE_PATTERN.match(filename)
        if not match:
            raise MigrationError(
                '%s: a migration file is named <version>_<name>.sql (digits, then "_" or "-", a name, ".sql")'
                % filename
            )
        version = int(match.group(1))
        if version > MAX_VERSION:
            raise MigrationError('%s: version %d does not fit in a bigint' % (filename, version))
        if version in found:
            raise MigrationError(
                'migration files %s and %s have the same version %d' % (found[version].filename, filename, version)
            )
        with open(full, 'rb') as handle:
            data = handle.read()
        try:
            sql = data.decode('utf-8')
        except UnicodeDecodeError as exc:
            raise MigrationError('%s: not UTF-8 text (%s)' % (filename, exc)) from exc
        if not sql.strip():
            raise MigrationError('%s: the file is empty' % filename)
        found[version] = Migration(version, match.group(2), filename, hashlib.sha256(data).hexdigest(), sql)
    return [found[v] for v in sorted(found)]


def plan(migrations, applied, target_version=None, allow_out_of_order=False):
    """``(pending, warnings)`` for the migrations and the records (version -> (name, checksum)).

    Raises ``MigrationError`` when an applied file was changed, or when a file older than the newest applied
    version was never applied (unless ``allow_out_of_order``). A recorded version without a file is a warning.
    """
    by_version = dict((m.version, m) for m in migrations)
    problems, warnings = [], []
    for version in sorted(applied):
        name, checksum = applied[version]
        migration = by_version.get(version)
        if migration is None:
            warnings.append('version %d (%s) is recorded as applied but its file is gone' % (version, name))
        elif migration.checksum != checksum:
            problems.append(
                'migration %s was changed after it was applied: recorded checksum %s, file %s'
                % (migration.filename, checksum, migration.checksum)
            )
    newest = max(applied) if applied else None
    pending = [
        m for m in migrations if m.version not in applied and (target_version is None or m.version <= target_version)
    ]
    if newest is not None and not allow_out_of_order:
        problems.extend(
            'migration %s (version %d) is older than the newest applied version %d and was never applied: '
            'give it a higher version, or set allow_out_of_order' % (m.filename, m.version, newest)
            for m in pending
            if m.version < newest
        )
    if problems:
        raise MigrationError('; '.join(problems))
    if target_version is not None and newest is not None and target_version < newest:
        warnings.append(
            'target_version %d is below the newest applied version %d: migrations are never reverted'
            % (target_version, newest)
        )
    return pending, warnings


def split_table(table):
    """``(schema, name)`` of a record table given as ``schema.name`` or ``name`` (in ``public``)."""
    parts = table.split('.') if isinstance(table, str) else []
    if len(parts) == 1:
        parts.insert(0, 'public')
    if len(parts) != 2 or not all(IDENTIFIER.match(p) for p in parts):
        raise MigrationError(
            'table must be [schema.]name, each part a lower-case identifier ([a-z_][a-z0-9_]*, at most 63 '
            'characters), got %r' % (table,)
        )
    return parts[0], parts[1]


def quote_identifier(name):
    """A PostgreSQL identifier in double quotes."""
    if not isinstance(name, str) or not name or '\x00' in name:
        raise MigrationError('%r is not a valid identifier' % (name,))
    return '"%s"' % name.replace('"', '""')


def lock_key(table):
    """The advisory lock key of a record table (``schema.name``): a signed 64-bit number, the same every run."""
    digest = hashlib.sha256(LOCK_NAMESPACE + table.encode('utf-8')).digest()
    return int.from_bytes(digest[:8], 'big', signed=True)


def describe_error(exc, sql=None):
    """PostgreSQL's message of a driver error on one line, with the line of ``sql`` it points at when known.

    Uses psycopg2's ``diag`` (primary message, detail, hint, position) and ``pgcode``; other drivers' errors fall
    back to the first line of ``pgerror`` or of the exception text. The SQL itself is never repeated.
    """
    diag = getattr(exc, 'diag', None)
    text = getattr(exc, 'pgerror', None) or str(exc)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    message = getattr(diag, 'message_primary', None)
    if not message:
        message = re.sub(r'^(ERROR|FATAL):\s*', '', lines[0]) if lines else exc.__class__.__name__
    for label, value in (
        ('DETAIL', getattr(diag, 'message_detail', None)),
        ('HINT', getattr(diag, 'message_hint', None)),
    ):
        if value:
            message += '; %s: %s' % (label, value.splitlines()[0])
    where = []
    if getattr(exc, 'pgcode', None):
        where.append('SQLSTATE %s' % exc.pgcode)
    position = getattr(diag, 'statement_position', None)
    match = re.search(r'^LINE (\d+):', text, re.MULTILINE)
    if sql is not None and position and str(position).isdigit():
        where.append('line %d' % (sql[: int(position) - 1].count('\n') + 1))
    elif match:
        where.append('line %s' % match.group(1))
    return '%s (%s)' % (message, ', '.join(where)) if where else message


class Migrator(object):
    """Reads and applies migrations through one connection; ``result_applied`` lists what was committed."""

    def __init__(self, conn, table='public.schema_migrations', session_role=None, clock=time.monotonic):
        schema, name = split_table(table)
        self.conn = conn
        self.table = '%s.%s' % (quote_identifier(schema), quote_identifier(name))
        self.lock = lock_key('%s.%s' % (schema, name))
        self.role = quote_identifier(session_role) if session_role else None
        self.clock = clock
        self.result_applied = []

    def _records(self, cursor):
        cursor.execute('SELECT version, name, checksum FROM %s ORDER BY version' % self.table)  # noqa: S608
        return dict((int(version), (name, checksum)) for version, name, checksum in cursor.fetchall())

    def read_applied(self):
        """The records (version -> (name, checksum)), without creating the table; ends its transaction."""
        cursor = self.conn.cursor()
        try:
            cursor.execute('SELECT to_regclass(%s)', (self.table,))
            return self._records(cursor) if cursor.fetchone()[0] else {}
        except Exception as exc:
            raise MigrationError('cannot read %s: %s' % (self.table, describe_error(exc))) from exc
        finally:
            self.conn.rollback()

    def current_version(self):
        """The newest recorded version, or None."""
        applied = self.read_applied()
        return max(applied) if applied else None

    def _begin(self, cursor):
        """Lock, create the record table if missing and read the records: the start of every transaction."""
        try:
            cursor.execute('SELECT pg_advisory_xact_lock(%s)', (self.lock,))
            cursor.execute(
                'CREATE TABLE IF NOT EXISTS %s (version bigint PRIMARY KEY, name text NOT NULL, '
                'checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now(), '
                'execution_ms integer NOT NULL)' % self.table
            )
            return self._records(cursor)
        except Exception as exc:
            raise MigrationError('cannot lock or read %s: %s' % (self.table, describe_error(exc))) from exc

    def _run(self, cursor, migration):
        started = self.clock()
        if self.role:
            cursor.execute('SET LOCAL ROLE %s' % self.role)
        cursor.execute(migration.sql)
        status = getattr(self.conn, 'get_transaction_status', None)
        if status is not None and status() != TRANSACTION_STATUS_INTRANS:
            raise MigrationError(
                'migration %s ended the transaction itself (COMMIT or ROLLBACK in the file): what it did '
                'up to there may be committed without a record; take transaction control out of the file'
                % (migration.filename,)
            )
        if self.role:
            cursor.execute('RESET ROLE')
        elapsed_ms = int(round((self.clock() - started) * 1000))
        cursor.execute(
            'INSERT INTO %s (version, name, checksum, execution_ms) VALUES (%%s, %%s, %%s, %%s)' % self.table,  # noqa: S608
            (migration.version, migration.name, migration.checksum, elapsed_ms),
        )

    def migrate(self, migrations, mode='all', target_version=None, allow_out_of_order=False):
        """Apply the pending migrations in version order and record each one.

        ``all`` runs every pending file and its record in one transaction; ``per_file`` commits after each file.
        The plan is made again under the lock at the start of every transaction.
        """
        if mode not in MODES:
            raise MigrationError('transaction must be one of %s, got %r' % (', '.join(MODES), mode))
        # Under REPEATABLE READ the snapshot would be taken by the lock statement, before the wait for the lock,
        # and the records committed by the run holding it would stay invisible. psycopg2 sets this per session.
        set_session = getattr(self.conn, 'set_session', None)
        if set_session is not None:
            set_session(isolation_level='READ COMMITTED')
        cursor = self.conn.cursor()
        while True:
            batch, migration = [], None
            try:
                applied = self._begin(cursor)
                pending, warnings = plan(migrations, applied, target_version, allow_out_of_order)
                batch = pending if mode == 'all' else pending[:1]
                for migration in batch:
                    self._run(cursor, migration)
                self.conn.commit()
            except MigrationError:
                self.conn.rollback()
                raise
            except Exception as exc:
                self.conn.rollback()
                raise MigrationError(self._failure(exc, mode, batch, migration)) from exc
            self.result_applied.extend(m.filename for m in batch)
            if batch:
                applied.update((m.version, (m.name, m.checksum)) for m in batch)
            if mode == 'all' or not batch:
                break
        return {
            'applied': list(self.result_applied),
            'pending': [m.filename for m in pending if m not in batch],
            'current_version': max(applied) if applied else None,
            'warnings': warnings,
        }

    def _failure(self, exc, mode, batch, migration):
        if migration is None:
            return 'cannot apply the migrations: %s' % describe_error(exc)
        message = 'migration %s failed, nothing of it was kept: %s' % (
            migration.filename,
            describe_error(exc, migration.sql),
        )
        if mode == 'all':
            before = [m.filename for m in batch[: batch.index(migration)]]
            if before:
                return message + '; rolled back with %s: nothing of this run is recorded' % ', '.join(before)
            return message + '; nothing of this run is recorded'
        return message + '; applied before it in this run: %s' % (', '.join(self.result_applied) or 'nothing')
