from django.urls import path, re_path

from reports import views

app_name = "reports"
urlpatterns = [
    path("<int:report_id>/download/", views.report_download, name="download"),
    # A signed link from the report e-mail: signing's URL-safe base64 and colons, and no longer than one can be.
    re_path(r"^link/(?P<token>[A-Za-z0-9_:-]{1,400})/$", views.report_link_download, name="link"),
]
