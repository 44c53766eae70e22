from django.conf import settings
from rest_framework import exceptions, pagination


class PageNumberPagination(pagination.PageNumberPagination):
    """`?page=N&page_size=M`; M is a positive integer, capped at API_MAX_PAGE_SIZE.

    DRF's own falls back to the default page size for any page_size it cannot read
    (`null`, `0`, `abc`), which the schema says is an integer: a 400 says so instead.
    """

    page_size_query_param = "page_size"

    @property
    def max_page_size(self) -> int:
        return settings.API_MAX_PAGE_SIZE

    def get_page_size(self, request):
        value = request.query_params.get(self.page_size_query_param)
        if value is None:
            return self.page_size
        digits = value.lstrip("0")
        if not (value.isascii() and value.isdecimal() and digits):
            raise exceptions.ValidationError({self.page_size_query_param: ["A positive whole number is required."]})
        # A number too long for int() (over 4300 digits) is still just "more than the maximum".
        return self.max_page_size if len(digits) > 6 else min(int(digits), self.max_page_size)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            parameter["schema"]["minimum"] = 1
            if parameter["name"] == self.page_size_query_param:
                most = self.max_page_size
                parameter["description"] = f"Results per page, 1 or more; more than {most} gives {most}."
        return parameters
