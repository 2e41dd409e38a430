# Managed by ierahkwa.platform.pgbouncer_exporter.
# Runs Debian's prometheus-pgbouncer-exporter 1.7 with two fixes:
# - it reads SHOW STATS' column total_requests, which pgBouncer 1.8 renamed (bookworm has 1.18): every scrape
#   failed with KeyError 'total_requests'. The column is read from total_query_count (same meaning, still
#   exported as pgbouncer_requests_total).
# - it opens one connection at start and never another: after pgBouncer restarts every scrape fails until the
#   exporter is restarted by hand, and it exits when pgBouncer is down at its start. Here the connection is
#   opened on first use and opened again when a query fails, so a scrape fails (Prometheus: up 0) exactly while
#   pgBouncer does not answer.
import contextlib
import sys

import psycopg2
from prometheus_pgbouncer_exporter import cli, collectors, utils
from prometheus_pgbouncer_exporter.cli import main

metrics = dict(collectors.StatsCollector.metrics)
if 'total_requests' in metrics:
    metrics['total_query_count'] = metrics.pop('total_requests')
collectors.StatsCollector.metrics = metrics


class ReconnectingConnection:
    """Stands for the exporter's connection: connects when first used and after a failed query."""

    def __init__(self, user, port, host):
        self._params = (user, port, host)
        self._connection = None

    def cursor(self, *args, **kwargs):
        if self._connection is None or self._connection.closed:
            self._connection = utils.get_connection(*self._params)
        return self._connection.cursor(*args, **kwargs)

    def reset(self):
        if self._connection is not None:
            with contextlib.suppress(psycopg2.Error):
                self._connection.close()
        self._connection = None


def retried(read):
    """One more try on a new connection when a query fails (pgBouncer restarted since the last scrape)."""

    def read_again(connection, key):
        try:
            return read(connection, key)
        except psycopg2.Error:
            connection.reset()
            return read(connection, key)

    return read_again


collectors.get_data_by_named_column = retried(collectors.get_data_by_named_column)
collectors.get_data_by_named_row = retried(collectors.get_data_by_named_row)
cli.get_connection = ReconnectingConnection

sys.exit(main())
