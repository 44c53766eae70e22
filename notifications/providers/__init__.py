"""Delivery clients for SMS (sms.TwilioSMS) and push (push.ExpoPush).

How their HTTP outcomes become retryable or permanent errors is shared with every other
outbound client, in kordant.outbound.
"""
