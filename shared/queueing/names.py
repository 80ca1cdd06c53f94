"""The one shared vocabulary of task and queue names.

Web enqueues by these names (never by importing worker code); celeryconfig.py
routes by the name's prefix, so `<pipeline>.<verb_noun>` lands on the `<pipeline>` queue.
"""

WEBHOOKS = "webhooks"
BOTS = "bots"
SENDS = "sends"
CAMPAIGNS = "campaigns"
ANALYTICS = "analytics"
MAINTENANCE = "maintenance"

# One queue, and one worker pool, per pipeline: a 100k campaign never delays a webhook or an agent's reply.
QUEUES = (WEBHOOKS, BOTS, SENDS, CAMPAIGNS, ANALYTICS, MAINTENANCE)


def ping_task(queue: str) -> str:
    """Every pool answers `<queue>.ping`; /readyz?deep=1 round-trips one through each queue."""
    return f"{queue}.ping"


PING_TASKS = tuple(ping_task(queue) for queue in QUEUES)

# webhooks: inbound messages, statuses, and handing conversations to agents
PROCESS_WEBHOOK = "webhooks.process_event"  # one row: kept so a task still in a broker is applied
DRAIN_WEBHOOKS = "webhooks.drain"  # the waiting rows, in arrival order, in batches
FETCH_MEDIA = "webhooks.fetch_media"
ASSIGN_WAITING = "webhooks.assign_waiting"

# bots: one step of a conversation's bot session at a time (shared/services/bot_runtime.py)
BOT_STEP = "bots.step"
BOT_CALL = "bots.call"  # a session's outside call (API or AI), made outside any transaction, then its result applied
BOT_FIRE_DUE = "bots.fire_due"  # a session whose due_at passed: a question's timeout, a lost call, an idle expiry
SWEEP_BOTS = "bots.sweep_due"  # beat: publishes fire_due for due sessions, and steps whose publish was lost

# sends: one dispatcher per number at a time sends its due messages in batches, paced by the shared limiter
DISPATCH_NUMBER = "sends.dispatch_number"
SEND_MESSAGE = "sends.send_message"  # the per-message task of before: kept so a message still in a broker re-arms
MARK_READ = "sends.mark_read"

# campaigns: the drip of a running campaign's ledger into the shared sending, and beat's starts
DISPATCH_CAMPAIGN = "campaigns.dispatch"  # one turn of a campaign's drip; it publishes the next while running
SWEEP_CAMPAIGNS = "campaigns.sweep"  # beat: starts scheduled campaigns on time, resumes drips that went quiet
EXPORT_CAMPAIGN_RECIPIENTS = "campaigns.export_recipients"  # a job: the per-recipient list as CSV

# maintenance
SWEEP_STALE_JOBS = "maintenance.sweep_stale_jobs"
EXPIRE_TRIALS = "maintenance.expire_trials"
SWEEP_MESSAGES = "maintenance.sweep_messages"
REPLAY_EVENT_LOG = "maintenance.replay_event_log"  # event-log lines kept while the event store was down
# contacts: bulk data work runs on the maintenance pool, away from sends and webhooks
BULK_UPDATE_CONTACTS = "maintenance.bulk_update_contacts"
IMPORT_CONTACTS = "maintenance.import_contacts"
EXPORT_CONTACTS = "maintenance.export_contacts"
# WhatsApp control plane (low volume, calls Graph): numbers and templates
SYNC_NUMBER = "maintenance.sync_number"
SUBMIT_TEMPLATE = "maintenance.submit_template"
SYNC_TEMPLATES = "maintenance.sync_templates"


def queue_for(task_name: str) -> str:
    prefix = task_name.split(".", 1)[0]
    if prefix not in QUEUES:
        raise ValueError(f"task {task_name!r} has no pipeline prefix; expected one of {', '.join(QUEUES)}")
    return prefix
