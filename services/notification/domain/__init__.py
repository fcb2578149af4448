"""Who hears what: the notification rules, pure (no I/O, no broker, no database).

Three audiences:
- the worker (pekerja), about their own registration, update, termination or reactivation, only when they
  consented and gave an e-mail address or a phone number (the `contact` of the outcome);
- the partner that sent a request, about every rejection and every hold over a budget, by signed webhook;
- subscribed stakeholders (pemerintah daerah, finance and planning offices, DPRD, employers, unions, BPJS
  branch offices), about the events in the region their subscription names or below it, immediately or in a
  daily digest.

The rules take facts (an outcome, the subscriptions whose scope could match, the partner's webhook) and return
`Message`s: who, through which channel, about what, with the facts a template needs. The wording lives in the
templates, one file per kind and language; nothing here talks to a channel.

- `messages`: what a notification is (kind, audience, recipient, subscription) and its delivery id;
- `addresses`: masking workers' and stakeholders' addresses wherever they are shown or logged;
- `scope`: the region hierarchy, and which subscribers hear about what happened where;
- `outcomes`: enrollment outcomes to messages for the worker, the partner and the stakeholders;
- `coverage`: coverage snapshots, milestones announced once, stagnation escalated;
- `digest`: the daily digest, on Asia/Jakarta's calendar;
- `budget`: budgets filling up (80%, 100% once per allocation version) and the daily digest of holds waiting;
- `holds`: a request held over a budget, told to its partner and the budget's subscribers, and the verdicts;
- `deliveries`: a delivery settled, and the event that reports it on the deliveries topic.
"""
