from django.contrib import admin

from security.admin_site import SecondFactorAdminSiteMixin


class OpsAdminSite(SecondFactorAdminSiteMixin, admin.AdminSite):
    site_header = "opsadmin"
    site_title = "opsadmin"
    index_title = "Operations"
    enable_nav_sidebar = True
