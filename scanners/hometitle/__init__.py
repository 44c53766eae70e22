"""HomeTitle: watches county recorder data for documents that change a subscriber's property title."""
