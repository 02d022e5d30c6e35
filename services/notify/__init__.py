"""Notify: tells citizens what they must know, by SMS, Zalo or e-mail, exactly once."""
