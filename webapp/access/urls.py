from __future__ import annotations

from django.urls import path

from .views import public, requester, review, staff

app_name = "access"
urlpatterns = [
    path("gates/", public.gates, name="gates"),
    path("gates/<slug:slug>/", public.gate_detail, name="gate"),
    path("gates/<slug:slug>/request/", requester.request_form, name="request"),
    path("gates/<slug:slug>/licence/", requester.licence, name="licence"),
    path("gates/<slug:slug>/renew", requester.renew, name="renew"),
    path("gates/<slug:slug>/figures/", staff.figures, name="figures"),
    path("gates/<slug:slug>/report/", staff.report, name="report"),
    path("gates/<slug:slug>/audit.csv", staff.export, {"kind": "csv"}, name="audit_csv"),
    path("gates/<slug:slug>/audit.jsonl", staff.export, {"kind": "jsonl"}, name="audit_jsonl"),
    path("access/", requester.mine, name="mine"),
    path("access/requests/<uuid:request_id>/withdraw", requester.withdraw, name="withdraw"),
    path("review/", review.queue, name="review"),
    path("review/decide", review.decide, name="decide"),
    path("review/notify", review.notify_settings, name="notify"),
    path("review/grants/", review.grants, name="review_grants"),
    path("review/grants/<uuid:grant_id>/revoke", review.revoke, name="revoke"),
]
