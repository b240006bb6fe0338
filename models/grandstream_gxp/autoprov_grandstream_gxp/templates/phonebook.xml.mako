<?xml version="1.0" encoding="UTF-8"?>
<%doc> phonebook.xml: the company directory in Grandstream's AddressBook format (accountindex 0: account 1). </%doc>\
<AddressBook>
% for first, last, number in items:
  <Contact>
    <LastName>${last}</LastName>
    <FirstName>${first}</FirstName>
    <Phone type="Work">
      <phonenumber>${number}</phonenumber>
      <accountindex>0</accountindex>
    </Phone>
  </Contact>
% endfor
</AddressBook>
