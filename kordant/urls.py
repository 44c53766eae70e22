from django.contrib import admin
from django.urls import include, path

from kordant import views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("admin/rq/", include("django_rq.urls")),
    path("admin/", admin.site.urls),
    path("reports/", include("reports.urls")),
]
