"""What each role may do with finance data (collected by ``sync_roles``).

Money only moves through finance.services, behind admin actions whose own
permissions the apps that add them grant; here every role that works with
operations may read them.
"""

VIEW_ALL = [
    "finance.view_account",
    "finance.view_customer",
    "finance.view_deposit",
    "finance.view_deposittransition",
    "finance.view_ledgertransaction",
    "finance.view_payout",
    "finance.view_payoutattempt",
    "finance.view_payouttransition",
    "finance.view_posting",
    "finance.view_wallet",
    "finance.view_webhookdelivery",
    "finance.view_webhookevent",
    "finance.view_withdrawal",
    "finance.view_withdrawaltransition",
    "finance.view_historicalcustomer",
    "finance.view_historicaldeposit",
    "finance.view_historicalpayout",
    "finance.view_historicalwithdrawal",
]

GRANTS = {
    "Viewer": VIEW_ALL,
    "Operator": VIEW_ALL,
    "Approver": VIEW_ALL,
    "Incident commander": VIEW_ALL,
}
