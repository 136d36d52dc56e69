"""Deadline reminders, escalations and the managers' weekly digest.

- policy.py: the settings as a Policy, the stages (owner_stage, escalation_stage),
  reminder_date, next_reminder_on (kept on each item by the services), and
  escalation_contact;
- sweeping.py: sweep, which writes the Notification rows due at a moment (in
  chunks), and its SweepReport;
- delivery.py: deliver_pending and deliver_to, which claim rows exactly once,
  send them, back off after failures and record what was sent in the history;
- digest.py: the managers' digest (recipients, context, sending once a week);
- messages.py: the emails, rendered from templates/emails/, and the stage labels.

The entry points are importable from here. The modules import each other in one
direction only (policy <- sweeping <- delivery <- digest, messages below them),
and never from this package, so importing any of them imports no cycle.
"""

from .delivery import deliver_pending
from .digest import manager_digest_send
from .policy import next_reminder_on
from .sweeping import SweepReport, sweep

__all__ = ["SweepReport", "deliver_pending", "manager_digest_send", "next_reminder_on", "sweep"]
