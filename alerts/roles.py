"""Who may see alerts and their deliveries, and who may send one again."""

VIEW = ["alerts.view_alert", "alerts.view_delivery", "alerts.view_deliveryattempt"]

GRANTS = {
    "Viewer": VIEW,
    "Operator": [*VIEW, "alerts.change_delivery"],  # "Send again"
    "Approver": VIEW,
    "Incident commander": [*VIEW, "alerts.change_delivery"],
}
