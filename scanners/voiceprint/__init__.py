"""VoicePrint: check voice recordings for impersonation against a customer's enrolled voice.

`audio.read_wav` decodes an upload (or rejects it with a reason code); `engine.enroll`
builds a profile and `engine.analyse` scores a sample against it and decides a verdict.
"""
