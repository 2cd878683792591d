from django.urls import path, re_path

from sandbox import views

app_name = "sandbox"
urlpatterns = [
    path("v1/payouts", views.payouts, name="payouts"),
    path("v1/payouts/<str:provider_reference>", views.payout_detail, name="payout"),
    path("v1/deposits", views.deposits, name="deposits"),
    path("v1/deposits/<str:provider_reference>", views.deposit_detail, name="deposit"),
    re_path(
        r"^v1/settlements/(?P<day>\d{4}-\d{2}-\d{2})\.csv$",
        views.settlement,
        name="settlement",
    ),
    path(
        "v1/control/payouts/<str:provider_reference>/<slug:action>",
        views.control_payout,
        name="control-payout",
    ),
    path(
        "v1/control/deposits/<str:provider_reference>/<slug:action>",
        views.control_deposit,
        name="control-deposit",
    ),
    path("v1/control/plans", views.control_plan, name="control-plan"),
    path(
        "v1/control/discrepancies",
        views.control_discrepancy,
        name="control-discrepancy",
    ),
]
