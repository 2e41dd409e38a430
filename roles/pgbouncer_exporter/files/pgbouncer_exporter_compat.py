# Managed by ierahkwa.platform.pgbouncer_exporter.
# Debian's prometheus-pgbouncer-exporter 1.7 reads SHOW STATS' column total_requests, which pgBouncer 1.8 renamed
# (bookworm has 1.18): every scrape fails with KeyError 'total_requests'. This runs the same exporter with that
# column read from total_query_count (same meaning, still exported as pgbouncer_requests_total).
import sys

from prometheus_pgbouncer_exporter import collectors
from prometheus_pgbouncer_exporter.cli import main

metrics = dict(collectors.StatsCollector.metrics)
if 'total_requests' in metrics:
    metrics['total_query_count'] = metrics.pop('total_requests')
collectors.StatsCollector.metrics = metrics

sys.exit(main())
