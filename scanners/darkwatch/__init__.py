"""DarkWatch: watches a subscriber's emails, phone numbers, usernames and domains for appearances in breaches."""
