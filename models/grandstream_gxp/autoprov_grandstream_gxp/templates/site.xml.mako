<%doc> cfg.xml: the site-wide part, for a phone whose cfg<mac>.xml is not here (not in the database yet). </%doc>\
<%include file="_provision.mako"/>
