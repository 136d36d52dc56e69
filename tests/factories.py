import datetime as dt
from typing import Any

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from incidents.models import Incident
from tracker import services
from tracker.models import ActionItem, Person

TEST_ACTOR = services.Actor.system("test")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password("correct horse battery staple")


class PersonFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Person

    email = factory.Sequence(lambda n: f"person{n}@example.com")
    name = factory.Sequence(lambda n: f"Person {n}")


class IncidentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Incident

    external_id = factory.Sequence(lambda n: f"INC-TEST-{n:04d}")
    title = factory.Sequence(lambda n: f"Incident {n}")
    severity = "SEV2"
    status = "resolved"
    declared_at = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(days=3))
    service = "payments"


class ActionItemFactory(factory.django.DjangoModelFactory):
    """Builds items directly, bypassing the services (no history, no next reminder, no
    ticket link); make_action_item below creates them as the application does."""

    class Meta:
        model = ActionItem

    incident = factory.SubFactory(IncidentFactory)
    title = factory.Sequence(lambda n: f"Follow-up {n}")
    owner = factory.SubFactory(PersonFactory)
    priority = "P2"
    type = "prevention"
    status = "open"
    deadline = factory.LazyFunction(lambda: timezone.localdate() + dt.timedelta(days=14))


class ServiceActionItemFactory(ActionItemFactory):
    """Creates items through `services.action_item_create`, as every path of the
    application does, so each has its "created" history row, `completed_at` and
    `next_reminder_on` set, and a pending ticket link when ticket sync is on."""

    actor = TEST_ACTOR
    note = ""

    @classmethod
    def _create(cls, model_class, *args, actor: services.Actor, note: str, **fields):
        return services.action_item_create(actor=actor, note=note, **fields)


def make_action_item(
    *, actor: services.Actor = TEST_ACTOR, note: str = "", **fields: Any
) -> ActionItem:
    """An item created through the service. Fields not given get ActionItemFactory's
    defaults: a new incident and owner, "Follow-up <n>", P2, open, due in 14 days.

    The `make_action_item` fixture hands out this function; helpers that are not
    fixtures call it directly, so the tests make items one way.
    """
    return ServiceActionItemFactory(actor=actor, note=note, **fields)
