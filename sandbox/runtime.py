"""The running sandbox: its state, its scheduler thread and its webhook sender, plus the few actions
(template status changes, reset) that touch all three."""

from __future__ import annotations

import copy
from dataclasses import dataclass

from flask import current_app

from sandbox import templates
from sandbox.errors import invalid
from sandbox.scheduler import Scheduler
from sandbox.state import (
    DEFAULT_CONFIG, TEMPLATE_QUALITY_SCORES, ConfigError, SandboxState, Template, new_numeric_id,
)
from sandbox.webhooks import WebhookSender, envelope, template_status_value

CONFIG_KEYS = {*DEFAULT_CONFIG, "faults", "numbers", "templates"}


@dataclass
class Sandbox:
    state: SandboxState
    scheduler: Scheduler
    webhooks: WebhookSender

    @classmethod
    def create(cls, config: dict | None = None) -> "Sandbox":
        config = copy.deepcopy(config or {})
        unknown = set(config) - CONFIG_KEYS
        if unknown:
            raise ValueError(f"unknown sandbox config keys: {', '.join(sorted(unknown))}")
        state = SandboxState(config)
        scheduler = Scheduler()
        sandbox = cls(state, scheduler, WebhookSender(state, scheduler))
        sandbox.reset()
        return sandbox

    def reset(self) -> None:
        """Back to the configuration the app was created with: numbers and templates from it, nothing else."""
        with self.state.lock:
            self.scheduler.clear()
            self.state.reset()
            for number in self.state.initial_config.get("numbers", []):
                self.state.configure_number(number)
            for definition in self.state.initial_config.get("templates", []):
                self.seed_template(definition)

    def close(self) -> None:
        self.scheduler.stop()
        self.webhooks.close()

    # templates -------------------------------------------------------------

    def create_template(self, waba_id: str, definition: dict, *, status: str = "PENDING") -> Template:
        """Store a checked definition (see templates.validate_definition). Expects the state lock held."""
        state = self.state
        fields = templates.validate_definition(definition)
        duplicate = any(
            t.waba_id == waba_id and t.name == fields["name"] and t.language == fields["language"]
            for t in state.templates.values()
        )
        if duplicate:
            raise invalid("Content in this language already exists", subcode=2388024)
        now = state.clock.now()
        template = Template(id=new_numeric_id(state.templates), waba_id=waba_id, status=status,
                            created_at=now, quality_date=now, **fields)
        state.templates[template.id] = template
        if status == "PENDING":
            self._review_later(template.id)
        return template

    def seed_template(self, definition: dict) -> Template:
        """A template that skips review (control API and create_app config); status defaults to APPROVED,
        quality_score (GREEN, YELLOW, RED) to Meta's UNKNOWN."""
        definition = dict(definition)
        waba_id = definition.pop("waba_id", None)
        status = str(definition.pop("status", "APPROVED")).upper()
        quality = str(definition.pop("quality_score", "UNKNOWN")).upper()
        if not waba_id:
            raise ConfigError("waba_id is required")
        if quality not in TEMPLATE_QUALITY_SCORES:
            raise ConfigError(f"quality_score must be one of {', '.join(TEMPLATE_QUALITY_SCORES)}")
        template = self.create_template(str(waba_id), definition, status=status)
        template.quality_score = quality
        return template

    def set_template_status(self, template: Template, status: str, reason: str = "NONE") -> None:
        """Change a template's status and send message_template_status_update. Expects the state lock held."""
        template.status = status
        template.rejected_reason = reason if status == "REJECTED" else "NONE"
        value = template_status_value(template, status, reason)
        payload = envelope([(template.waba_id, "message_template_status_update", value)],
                           time_field=self.state.clock.now())
        self.webhooks.to_waba(template.waba_id, payload, field="message_template_status_update")

    def _review_later(self, template_id: str) -> None:
        state = self.state
        epoch = state.epoch

        def review() -> None:
            with state.lock:
                template = state.templates.get(template_id)
                if epoch != state.epoch or template is None or template.status != "PENDING":
                    return
                status, reason = templates.review(template)
                self.set_template_status(template, status, reason)

        self.scheduler.call_later(state.config["template_review_seconds"], review)


def current() -> Sandbox:
    return current_app.extensions["sandbox"]
