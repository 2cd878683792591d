from django.contrib import admin


class OpsAdminSite(admin.AdminSite):
    site_header = "opsadmin"
    site_title = "opsadmin"
    index_title = "Operations"
    enable_nav_sidebar = True
