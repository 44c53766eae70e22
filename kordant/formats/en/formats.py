# Every date and time the admin shows says its zone (the project's TIME_ZONE is UTC): "2026-12-05 00:47 UTC".
# Only how times are shown changes; what forms accept stays Django's English formats.
DATETIME_FORMAT = "Y-m-d H:i T"
SHORT_DATETIME_FORMAT = "Y-m-d H:i T"
