"""What Google's and Microsoft's servers answer to the classic mistakes, as local servers replay them."""

GMAIL_535 = (
    "535-5.7.8 Username and Password not accepted. For more information, go to\r\n"
    "535 5.7.8  https://support.google.com/mail/?p=BadCredentials a1-20020a05600c1234 - gsmtp"
)
MICROSOFT_5_7_30 = "550 5.7.30 Basic authentication is not supported for Client Submission."
MICROSOFT_5_7_139 = (
    "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant."
    " Visit https://aka.ms/smtp_auth_disabled for more information."
)
MICROSOFT_SECURITY_DEFAULTS = (
    "535 5.7.139 Authentication unsuccessful, user is locked by your organization's security defaults policy."
    " Contact your administrator."
)
