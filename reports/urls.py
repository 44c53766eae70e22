from django.urls import path

from reports import views

app_name = "reports"
urlpatterns = [path("<int:report_id>/download/", views.report_download, name="download")]
