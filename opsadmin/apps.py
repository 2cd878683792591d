from django.contrib.admin.apps import AdminConfig


class OpsAdminConfig(AdminConfig):
    """Replaces django.contrib.admin so that ``admin.site`` is ours."""

    default_site = "opsadmin.admin_site.OpsAdminSite"
