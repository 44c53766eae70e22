class ListFiltersOnly:
    """Filters and ordering apply to lists; a detail or an action finds its object by id alone
    (and does not pay for building a FilterSet it would not use)."""

    def filter_queryset(self, queryset):
        return super().filter_queryset(queryset) if self.action == "list" else queryset
