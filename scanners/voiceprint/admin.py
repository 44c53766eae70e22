from django.contrib import admin

from scanners.voiceprint.models import AnalysisJob, VoiceProfile, VoiceSample
from scanners.voiceprint.services import analysis_jobs_retry, voiceprint_batch_soon


@admin.register(VoiceProfile)
class VoiceProfileAdmin(admin.ModelAdmin):
    list_display = ("subscription", "model_name", "sample_count", "speech_seconds", "enrolled_at")
    list_filter = ("model_name",)
    search_fields = ("subscription__user__email", "subscription__user__username")
    list_select_related = ("subscription__user",)
    exclude = ("embedding",)  # 512 numbers help nobody on screen
    readonly_fields = ("subscription", "model_name", "sample_count", "speech_seconds", "enrolled_at", "updated_at")


@admin.register(VoiceSample)
class VoiceSampleAdmin(admin.ModelAdmin):
    list_display = ("id", "subscription", "purpose", "original_name", "size_bytes", "duration", "uploaded_at")
    list_filter = ("purpose",)
    search_fields = ("=id", "original_name", "subscription__user__email")
    list_select_related = ("subscription__user",)
    date_hierarchy = "uploaded_at"
    readonly_fields = ("subscription", "purpose", "file", "original_name", "size_bytes", "duration", "uploaded_at")


@admin.register(AnalysisJob)
class AnalysisJobAdmin(admin.ModelAdmin):
    list_display = ("id", "sample", "status", "verdict", "similarity", "synthetic_score", "error_code", "finished_at")
    list_filter = ("status", "verdict", "error_code")
    search_fields = ("=id", "=sample__id", "sample__original_name", "sample__subscription__user__email", "error")
    list_select_related = ("sample",)
    date_hierarchy = "created_at"
    actions = ["retry", "run_batch_now"]

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in AnalysisJob._meta.fields]

    def has_add_permission(self, request):
        return False  # analyses come from uploads

    @admin.action(description="Analyse again (failed ones)")
    def retry(self, request, queryset):
        self.message_user(request, f"{analysis_jobs_retry(queryset)} analysis job(s) queued again.")

    @admin.action(description="Run a batch now")
    def run_batch_now(self, request, queryset):
        self.message_user(request, f"Batch queued: {voiceprint_batch_soon().pk}.")
