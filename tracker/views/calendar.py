"""The owner's deadline feed (token in the URL, no sign-in) and the page to manage it."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST, require_safe

from .. import calendar


@require_safe
def calendar_feed(request, token: str):
    """The iCalendar feed of one person's open deadlines; any unknown token is 404."""
    person = calendar.calendar_person_by_token(token=token)
    if person is None:
        raise Http404("No such calendar.")
    body = calendar.calendar_feed_build(person=person, items=calendar.calendar_items(person=person))
    response = HttpResponse(body, content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = 'inline; filename="deadlines.ics"'
    # The URL is the credential: keep the feed out of shared caches.
    response["Cache-Control"] = "private, max-age=300"
    response["X-Robots-Tag"] = "noindex"
    return response


@login_required
@require_safe
def calendar_page(request):
    """The signed-in user's feed URL, with a button to reset it."""
    person = calendar.calendar_person_for_user(user=request.user)
    feed_url = calendar.calendar_feed_url(person=person) if person else ""
    context = {
        "person": person,
        "feed_url": feed_url,
        "webcal_url": feed_url.replace("https://", "webcal://", 1).replace(
            "http://", "webcal://", 1
        ),
    }
    return render(request, "tracker/calendar.html", context)


@login_required
@require_POST
def calendar_reset(request):
    """Replace the user's feed token: calendars subscribed to the old URL stop updating."""
    person = calendar.calendar_person_for_user(user=request.user)
    if person is None:
        messages.error(request, "Your account has no email address, so it owns no items.")
    else:
        calendar.calendar_token_reset(person=person)
        messages.success(
            request, "Your calendar URL was reset. Subscribe again with the new URL below."
        )
    return redirect("calendar")
