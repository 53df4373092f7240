# Request Tracker 5 initialdata for frontdesk's test server (scripts/rt-test-server.sh): queue
# Support, frontdesk's ticket custom fields, the account frontdesk files tickets as, and the
# specialists frontdesk acts for (group Specialists).
#
# Loaded with: rt-setup-database-5 --action insert --datafile THIS_FILE --skip-create
#
# RT evaluates this file with the database connected, so it declares only what is missing:
# loading it a second time creates nothing (an insert run is not idempotent by itself and would
# add duplicate custom fields). REST2 in RT 5.0.3 cannot apply a custom field to a queue, hence
# initialdata; `Queue => 0` applies each field to every queue.

use strict;
use warnings;
use utf8;    # the specialists' real names

our ( @Queues, @CustomFields, @Users, @Groups, @Members, @ACL );

my $queue = RT::Queue->new( RT->SystemUser );
$queue->Load('Support');
push @Queues, {
    Name        => 'Support',
    Description => 'Merchant support requests filed by frontdesk',
} unless $queue->id;

my %description = (
    FrontdeskRef => "frontdesk's own reference: the idempotency key of a filing",
    RequestType  => 'Type of the request (technical, billing, ...)',
    Category     => 'Category of the request',
    Store        => 'Store the request is about',
    Plan         => "Merchant's plan",
    TelegramUser => 'Telegram user id of the merchant',
    PaidAgreement => "The merchant's agreement to pay for a modification: price; who; when (UTC)",
    StoreName        => "The store's name (Store holds its domain)",
    RequestTypeLabel => 'Type of the request as the merchant chose it (RequestType: its code)',
    CategoryLabel    => 'Category as the merchant chose it (Category: its code)',
    ResolutionDue    => 'Resolution deadline the merchant was told (Due: the first reaction)',
);
# A date shows in each reader's own time zone; the rest is text.
my %type = ( ResolutionDue => 'DateTime' );

for my $name (qw(FrontdeskRef RequestType Category Store Plan TelegramUser PaidAgreement
    StoreName RequestTypeLabel CategoryLabel ResolutionDue)) {
    my $cf = RT::CustomField->new( RT->SystemUser );
    $cf->LoadByName( Name => $name, LookupType => 'RT::Queue-RT::Ticket' );
    if ( $cf->id ) {
        # A field disabled by hand (a test server shared with an older checkout) comes back.
        $cf->SetDisabled(0) if $cf->Disabled;
        next;
    }
    push @CustomFields, {
        Name        => $name,
        Type        => $type{$name} || 'FreeformSingle',
        LookupType  => 'RT::Queue-RT::Ticket',
        Description => $description{$name},
        Queue       => 0,
    };
}

# frontdesk's own account, apart from the specialists (root here): RT records who wrote each
# message, and the adapter tells a merchant's message (written by this account on the merchant's
# behalf) from a specialist's reply by that, or by the specialist's name in frontdesk's hidden
# mark when frontdesk wrote it for a specialist from Telegram. Only the rights filing and reading
# need, ReplyToTicket (the merchant's messages, a specialist's replies from Telegram),
# ModifyTicket (the merchant closes and reopens their own ticket; a specialist resolves one from
# Telegram; the owner of an unowned ticket), ReassignTicket (a specialist takes or hands on a
# ticket someone else owns), and CommentOnTicket with ShowTicketComments (internal notes: a
# merchant out of reach, a specialist's comment from Telegram; read back so a retry never posts
# one twice).
my $user = RT::User->new( RT->SystemUser );
$user->Load('frontdesk');
push @Users, {
    Name         => 'frontdesk',
    RealName     => 'frontdesk bot',
    EmailAddress => 'frontdesk@localhost',
    Password     => 'frontdesk-test',
    Privileged   => 1,
    # TicketSQL reads dates in the account's time zone; the adapter's default is UTC.
    Timezone     => 'UTC',
} unless $user->id;

my @rights = qw(SeeQueue CreateTicket ShowTicket ReplyToTicket ModifyTicket ReassignTicket
    CommentOnTicket ShowTicketComments SeeCustomField SetInitialCustomField);
my @missing = ( $user->id && $queue->id )
    ? grep { !$user->PrincipalObj->HasRight( Right => $_, Object => $queue ) } @rights
    : @rights;
push @ACL, { UserId => 'frontdesk', Queue => 'Support', Right => \@missing } if @missing;

# The specialists frontdesk acts for (issue 9: reply, comment, resolve, take from Telegram):
# privileged users of group Specialists, which may own tickets of the queue (OwnTicket: RT makes
# only such a user the owner) and work them in RT's web interface. One has a real name (frontdesk
# shows it), one has none (frontdesk shows the user name). Password: specialist-test.
my %specialists = (
    ivan  => { RealName => 'Иван Петров', EmailAddress => 'ivan@support.example' },
    maria => { RealName => '',            EmailAddress => 'maria@support.example' },
);
my $specialist_group = RT::Group->new( RT->SystemUser );
$specialist_group->LoadUserDefinedGroup('Specialists');
my @new_members;
for my $name ( sort keys %specialists ) {
    my $specialist = RT::User->new( RT->SystemUser );
    $specialist->Load($name);
    if ( !$specialist->id ) {
        push @Users, {
            Name       => $name,
            %{ $specialists{$name} },
            Password   => 'specialist-test',
            Privileged => 1,
            Timezone   => 'UTC',
        };
        push @new_members, $name;
    }
    elsif ( $specialist_group->id && !$specialist_group->HasMember( $specialist->PrincipalObj ) ) {
        push @Members, { Group => 'Specialists', Name => $name };
    }
}
push @Groups, {
    Name        => 'Specialists',
    Description => 'Support specialists: own and work tickets of queue Support',
    Members     => { Users => [ sort keys %specialists ] },
} unless $specialist_group->id;
push @Members, map { { Group => 'Specialists', Name => $_ } } @new_members
    if $specialist_group->id;
my @specialist_rights = qw(SeeQueue ShowTicket ShowTicketComments ReplyToTicket
    CommentOnTicket ModifyTicket OwnTicket TakeTicket StealTicket SeeCustomField
    ModifyCustomField);
my @specialist_missing = ( $specialist_group->id && $queue->id )
    ? grep { !$specialist_group->PrincipalObj->HasRight( Right => $_, Object => $queue ) }
        @specialist_rights
    : @specialist_rights;
push @ACL, {
    GroupDomain => 'UserDefined',
    GroupId     => 'Specialists',
    Queue       => 'Support',
    Right       => \@specialist_missing,
} if @specialist_missing;

# As many RT sites do, anyone may reply by e-mail to "[rt.vm #N]": the requester's own mail, a
# Cc, a stranger. frontdesk must not pass those on as support's replies (the tests send them).
my $everyone = RT::Group->new( RT->SystemUser );
$everyone->LoadSystemInternalGroup('Everyone');
push @ACL, {
    GroupDomain => 'SystemInternal',
    GroupType   => 'Everyone',
    Queue       => 'Support',
    Right       => 'ReplyToTicket',
} unless $queue->id
    && $everyone->PrincipalObj->HasRight( Right => 'ReplyToTicket', Object => $queue );

# RT_STAFF_GROUP: a group whose members speak for support though they are not privileged (here
# an outside contractor answering by e-mail). frontdesk reads its members: SeeGroup on it.
my $contractor = RT::User->new( RT->SystemUser );
$contractor->Load('contractor@example.com');
push @Users, {
    Name         => 'contractor@example.com',
    EmailAddress => 'contractor@example.com',
    RealName     => 'Outside contractor',
    Privileged   => 0,
} unless $contractor->id;

my $staff = RT::Group->new( RT->SystemUser );
$staff->LoadUserDefinedGroup('Support Staff');
push @Groups, {
    Name        => 'Support Staff',
    Description => 'Speak for support though not privileged (frontdesk RT_STAFF_GROUP)',
    Members     => { Users => ['contractor@example.com'] },
} unless $staff->id;
push @ACL, { UserId => 'frontdesk', Group => 'Support Staff', Right => 'SeeGroup' }
    unless $staff->id && $user->id
    && $user->PrincipalObj->HasRight( Right => 'SeeGroup', Object => $staff );

1;
