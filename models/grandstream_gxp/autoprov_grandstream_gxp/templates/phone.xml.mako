<%doc> cfg<mac>.xml: holds SIP passwords, served only to clients the [http] access rules allow. </%doc>\
<%include file="_provision.mako"/>
