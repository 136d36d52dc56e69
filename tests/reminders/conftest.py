import pytest


@pytest.fixture
def every_day(settings):
    """Reminders on all seven days, to test the stage arithmetic apart from quiet days."""
    settings.TRACKER_REMIND_WEEKDAYS = [0, 1, 2, 3, 4, 5, 6]
    settings.TRACKER_ESCALATION_EMAIL = ""
