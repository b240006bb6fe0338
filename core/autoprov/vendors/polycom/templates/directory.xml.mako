<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<%doc>
  The contact directory (000000000000-directory.xml, <mac>-directory.xml). No generator comment: the phone
  writes this file back with its user's own contacts, and what it writes is served again.
</%doc>\
<directory>
  <item_list>
% for fn, ln, ct, extra in items:
    <item><fn>${fn}</fn><ln>${ln}</ln><ct>${ct}</ct>\
% for tag, value in extra:
<${tag | n}>${value}</${tag | n}>\
% endfor
</item>
% endfor
  </item_list>
</directory>
