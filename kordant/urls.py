from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from jobs import rq_dashboard
from kordant import views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    # django-rq's pages, read-only and for holders of its permission only (jobs/rq_dashboard.py).
    path("admin/rq/", include((rq_dashboard.urlpatterns(), "django_rq"))),
    path("admin/", admin.site.urls),
    path("reports/", include("reports.urls")),
    path("api/v1/", include("api.urls")),
    # The contract, public like any API reference; the docs' JavaScript and CSS are served from here (no CDN).
    # No ReDoc page: its template loads Google's fonts, and Swagger UI already shows the same schema.
    path("api/schema/", SpectacularAPIView.as_view(permission_classes=[], authentication_classes=[]), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema", permission_classes=[]), name="api-docs"),
]
