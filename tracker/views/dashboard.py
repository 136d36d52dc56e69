from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.utils import timezone

from .. import deadlines
from ..charts import time_to_done_chart, trend_chart
from ..dashboard import dashboard_summary


@login_required
def dashboard(request):
    """The managers' landing page; every signed-in user may read it."""
    summary = dashboard_summary(now=timezone.now())
    return render(
        request,
        "tracker/dashboard.html",
        {
            "summary": summary,
            "due_soon_days": deadlines.due_soon_days(),
            "trend_chart": trend_chart(weeks=summary.weeks),
            "time_to_done_chart": time_to_done_chart(
                priorities=summary.by_priority, has_median=summary.has_median
            ),
        },
    )
