import datetime as dt

import pytest

from tests import factories
from tracker import services
from tracker.models import ActionItem

from .helpers import NOW, TODAY


@pytest.fixture(autouse=True)
def _frozen(time_machine):
    time_machine.move_to(NOW, tick=False)


@pytest.fixture
def owner(db):
    return factories.PersonFactory(email="Owner@Example.com", name="Olga Owner")


@pytest.fixture
def item(owner) -> ActionItem:
    """An open item due tomorrow, created through the services (so its reminder is scheduled)."""
    return services.action_item_create(
        actor=services.Actor.system(),
        incident=factories.IncidentFactory(external_id="INC-LINKS-0001"),
        title="Add alerting on pool exhaustion",
        description="Alert at 70% and 85%.",
        owner=owner,
        priority="P1",
        deadline=TODAY + dt.timedelta(days=1),
    )
