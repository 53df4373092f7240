# Request Tracker 5 initialdata: a Scrip that tells frontdesk at once when someone acts on a
# ticket of its queue, by a signed POST to frontdesk's /queue/events (bot/queue_events.py).
# Without it frontdesk still learns everything from its sync worker, SYNC_INTERVAL_SECONDS later.
#
# 1. Give RT the address and the shared secret, e.g. in
#    /etc/request-tracker5/RT_SiteConfig.d/60-frontdesk.pm (readable by RT only):
#
#        Set($FrontdeskEventsURL, 'https://frontdesk.example.com/queue/events');
#        Set($FrontdeskEventsSecret, '...');   # frontdesk's QUEUE_EVENTS_SECRET
#        Set($FrontdeskAccount, 'frontdesk');  # frontdesk's own RT user (the default)
#
#    and restart RT so that it reads them.
# 2. Load the Scrip, applied to frontdesk's queue (FRONTDESK_RT_QUEUE, default Support):
#
#        FRONTDESK_RT_QUEUE=Support rt-setup-database-5 --action insert \
#            --datafile scripts/rt-frontdesk-scrip.pl --skip-create
#
#    Loading it again changes nothing (a Scrip of the same description is left alone).
#
# The call: body {"ticket_id": "<id>", "transaction_id": "<id>"}, headers
# X-Frontdesk-Timestamp (unix seconds) and X-Frontdesk-Signature: sha256=<hex HMAC-SHA256 of
# "<timestamp>.<body>" keyed with the secret>. frontdesk reads the content from RT itself; the
# body only says where to look.
#
# The Scrip runs for each transaction as RT records it (the TransactionCreate stage): a reply, a
# status or an owner change by anyone but frontdesk's own account. Not at the TransactionBatch
# stage: RT 5.0.3 runs batch scrips once per ticket object, so of a change of owner and status in
# one request (REST2 PUT, the web form) the status would be lost. RT may run the Scrip before it
# commits: frontdesk answers 202 at once and looks for the transaction a few times. The call never
# fails the specialist's action (5 s timeout, failures only logged): a lost call only means the
# change reaches the merchant at the next poll. HTTP::Tiny needs IO::Socket::SSL for an https URL.

use strict;
use warnings;

our @Scrips;

my $description = 'frontdesk: push changes to /queue/events';

my $action = <<'FRONTDESK_ACTION';
my $url    = RT->Config->Get('FrontdeskEventsURL');
my $secret = RT->Config->Get('FrontdeskEventsSecret');
unless ( $url && $secret ) {
    RT->Logger->warning('frontdesk scrip: set $FrontdeskEventsURL and $FrontdeskEventsSecret');
    return 1;
}
my $account = RT->Config->Get('FrontdeskAccount') || 'frontdesk';

# What frontdesk forwards: replies, status and owner changes, unless frontdesk made them.
my $transaction = $self->TransactionObj;
my $type        = $transaction->Type  // '';
my $field       = $transaction->Field // '';
return 1
    unless $type eq 'Correspond'
    || $type eq 'Status'
    || ( $type eq 'Set' && $field =~ /^(?:Owner|Status)$/ );
return 1 if $transaction->CreatorObj->Name eq $account;

require Digest::SHA;
require HTTP::Tiny;
require JSON::PP;
my $body = JSON::PP->new->canonical->encode(
    { ticket_id => '' . $self->TicketObj->id, transaction_id => '' . $transaction->id } );
my $timestamp = time;
my $signature = Digest::SHA::hmac_sha256_hex( "$timestamp.$body", $secret );
my $response  = HTTP::Tiny->new( timeout => 5 )->post(
    $url,
    {   headers => {
            'Content-Type'          => 'application/json',
            'X-Frontdesk-Timestamp' => $timestamp,
            'X-Frontdesk-Signature' => "sha256=$signature",
        },
        content => $body,
    }
);
unless ( $response->{success} ) {
    RT->Logger->warning( sprintf 'frontdesk scrip: %s answered %s %s for ticket %s',
        $url, $response->{status}, $response->{reason}, $self->TicketObj->id );
}
return 1;
FRONTDESK_ACTION

my $existing = RT::Scrip->new( RT->SystemUser );
$existing->LoadByCols( Description => $description );

push @Scrips, {
    Description       => $description,
    Queue             => $ENV{FRONTDESK_RT_QUEUE} || 'Support',
    ScripCondition    => 'On Transaction',
    ScripAction       => 'User Defined',
    Template          => 'Blank',
    Stage             => 'TransactionCreate',
    CustomPrepareCode => 'return 1;',
    CustomCommitCode  => $action,
} unless $existing->id;

1;
