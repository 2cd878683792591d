from django.urls import path

from security import views

app_name = "security"

urlpatterns = [
    path("verify/", views.verify, name="verify"),
    path("enrol/", views.enrol, name="enrol"),
    path("step-up/", views.step_up, name="step_up"),
    path("logout/", views.logout, name="logout"),
]
