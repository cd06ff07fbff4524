"""In-process counters rendered as Prometheus text (plus DB gauges at scrape time)."""
from __future__ import annotations

import threading
from collections import defaultdict
from typing import Dict, Mapping, Tuple


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.deliveries: Dict[Tuple[str, str], int] = defaultdict(int)   # (channel, outcome)
        self.inbound: Dict[str, int] = defaultdict(int)                  # action
        self.sweeps = 0
        self.sweep_seconds_sum = 0.0
        self.sweep_last_seconds = 0.0
        self.claimed = 0

    def delivery(self, channel: str, outcome: str) -> None:
        with self._lock:
            self.deliveries[(channel, outcome)] += 1

    def sweep(self, seconds: float, claimed: int) -> None:
        with self._lock:
            self.sweeps += 1
            self.sweep_seconds_sum += seconds
            self.sweep_last_seconds = seconds
            self.claimed += claimed

    def inbound_sms(self, action: str) -> None:
        with self._lock:
            self.inbound[action] += 1

    def render(self, by_status: Mapping[str, int]) -> str:
        lines = ["# HELP reminders_by_status Reminder rows by status.", "# TYPE reminders_by_status gauge"]
        for s, n in sorted(by_status.items()):
            lines.append(f'reminders_by_status{{status="{s}"}} {n}')
        lines += ["# HELP reminders_failed Reminder rows that failed permanently or after MAX_ATTEMPTS.",
                  "# TYPE reminders_failed gauge", f"reminders_failed {by_status.get('failed', 0)}"]
        with self._lock:
            lines += ["# HELP reminders_deliveries_total Delivery attempts by channel and outcome (sent|retry|failed|deferred|cancelled).",
                      "# TYPE reminders_deliveries_total counter"]
            for (ch, o), n in sorted(self.deliveries.items()):
                lines.append(f'reminders_deliveries_total{{channel="{ch}",outcome="{o}"}} {n}')
            fails = sum(n for (ch, o), n in self.deliveries.items() if o in ("failed", "retry"))
            lines += ["# HELP reminders_delivery_failures_total Failed delivery attempts (retryable or permanent).",
                      "# TYPE reminders_delivery_failures_total counter", f"reminders_delivery_failures_total {fails}"]
            lines += ["# HELP reminders_sweep_duration_seconds Duration of sweep runs.",
                      "# TYPE reminders_sweep_duration_seconds summary",
                      f"reminders_sweep_duration_seconds_sum {self.sweep_seconds_sum:.6f}",
                      f"reminders_sweep_duration_seconds_count {self.sweeps}",
                      "# HELP reminders_sweep_last_duration_seconds Duration of the last sweep run.",
                      "# TYPE reminders_sweep_last_duration_seconds gauge",
                      f"reminders_sweep_last_duration_seconds {self.sweep_last_seconds:.6f}",
                      "# HELP reminders_claimed_total Rows claimed by this worker.",
                      "# TYPE reminders_claimed_total counter", f"reminders_claimed_total {self.claimed}",
                      "# HELP reminders_inbound_sms_total Inbound SMS webhook calls by action.",
                      "# TYPE reminders_inbound_sms_total counter"]
            for a, n in sorted(self.inbound.items()):
                lines.append(f'reminders_inbound_sms_total{{action="{a}"}} {n}')
        return "\n".join(lines) + "\n"
