#!/bin/sh
# Healthy when the ejabberd node answers `ejabberdctl status` (exit 0: "... ejabberd ... is running").
exec /usr/sbin/ejabberdctl status >/dev/null
