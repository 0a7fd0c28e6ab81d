#!/usr/bin/perl
# Build the lab's GeoIP databases, so the collector's enrichment (libmaxminddb) sees the lab's
# private/documentation networks as it sees real ones in production GeoIP2/GeoLite2 databases.
#
# Usage: write-lab-mmdb.pl NETWORKS.json OUT_DIR
#
# NETWORKS.json is an array of
#   {"network": "10.64.1.0/24", "asn": 64501, "isp": "Northwind Telecom",
#    "country": "DE", "city": "Berlin", "continent": "EU"}      (city, continent optional)
# IPv4 and IPv6 networks (e.g. "2001:db8:1::/48") may be mixed; a later entry overrides an
# earlier overlapping one.
#
# Writes (each via a temporary file and rename, so a running collector never sees half a file):
#   OUT_DIR/Lab-City.mmdb  database_type "GeoIP2-City":  country.iso_code, country.names.en,
#                          city.names.en, continent.code
#   OUT_DIR/Lab-ASN.mmdb   database_type "GeoLite2-ASN": autonomous_system_number (uint32),
#                          autonomous_system_organization, isp, organization
# Both are IPv6 trees (record size 28) with IPv4 aliased into ::ffff:0:0/96 etc. as MaxMind's
# own databases are, and keep reserved networks (the writer drops them by default).
# Needs Debian's libmaxmind-db-writer-perl. Errors name the file and entry; exit status 1.
use strict;
use warnings;
use JSON::PP ();
use MaxMind::DB::Writer::Tree;

my %COUNTRY = (
    AT => 'Austria', AU => 'Australia', BE => 'Belgium', BR => 'Brazil', CA => 'Canada',
    CH => 'Switzerland', CN => 'China', DE => 'Germany', DK => 'Denmark', ES => 'Spain',
    FI => 'Finland', FR => 'France', GB => 'United Kingdom', IE => 'Ireland', IN => 'India',
    IT => 'Italy', JP => 'Japan', NL => 'Netherlands', NO => 'Norway', PL => 'Poland',
    SE => 'Sweden', SG => 'Singapore', US => 'United States', ZA => 'South Africa',
);
my %TYPE = (autonomous_system_number => 'uint32', country => 'map', city => 'map',
            continent => 'map', names => 'map');

sub fail {    # message without Perl's " at FILE line N." suffix
    (my $m = "@_") =~ s/(?: at \S+ line \d+\.?)?\s*$//;
    print STDERR "write-lab-mmdb: $m\n";
    exit 1;
}

@ARGV == 2 or fail('usage: write-lab-mmdb.pl NETWORKS.json OUT_DIR');
my ($json_file, $out_dir) = @ARGV;
-d $out_dir or fail("$out_dir: not a directory");

my $nets = eval {
    open my $fh, '<:raw', $json_file or die $!;
    JSON::PP->new->utf8->decode(do { local $/; <$fh> });
} // fail("$json_file: $@");
ref $nets eq 'ARRAY' or fail("$json_file: expected a JSON array of networks");

my %tree = map {
    my ($type, $what) = @$_;
    $type => MaxMind::DB::Writer::Tree->new(
        database_type            => $type,
        description              => { en => "Vantage lab $what (generated; not real data)" },
        languages                => ['en'],
        ip_version               => 6,
        record_size              => 28,
        alias_ipv6_to_ipv4       => 1,
        remove_reserved_networks => 0,
        map_key_type_callback    => sub { $TYPE{ $_[0] } // 'utf8_string' },
    );
} ['GeoIP2-City', 'city/country'], ['GeoLite2-ASN', 'ASN'];

for my $i (0 .. $#$nets) {
    my $e = $nets->[$i];
    my $where = "$json_file: entry $i (" . JSON::PP->new->canonical->encode($e) . ')';
    ref $e eq 'HASH' or fail("$where: not an object");
    my ($net, $asn, $isp, $cc) = @{$e}{qw(network asn isp country)};
    my ($addr, $len) = ($net // '') =~ m{^([0-9A-Fa-f:.]+)/(\d+)$};
    defined $len && $len <= ($addr =~ /:/ ? 128 : 32)
        or fail("$where: \"network\" must be an address/prefix-length");
    defined $asn && $asn =~ /^\d+$/ && $asn > 0 && $asn < 2**32
        or fail("$where: \"asn\" must be an integer 1..4294967295");
    defined $isp && !ref $isp && length $isp or fail("$where: \"isp\" must be a non-empty string");
    defined $cc && $cc =~ /^[A-Z]{2}$/ or fail("$where: \"country\" must be a 2-letter ISO code");
    for my $k (qw(city continent)) {
        !defined $e->{$k} || (!ref $e->{$k} && length $e->{$k})
            or fail("$where: \"$k\" must be a non-empty string");
    }

    my %city = (country => { iso_code => $cc, names => { en => $COUNTRY{$cc} // $cc } });
    $city{city}      = { names => { en => $e->{city} } } if defined $e->{city};
    $city{continent} = { code => $e->{continent} }       if defined $e->{continent};
    my %as = (autonomous_system_number => $asn + 0, autonomous_system_organization => $isp,
              isp => $isp, organization => $isp);
    eval {
        $tree{'GeoIP2-City'}->insert_network($net, \%city);
        $tree{'GeoLite2-ASN'}->insert_network($net, \%as);
        1;
    } or fail("$where: $@");
}

for (['GeoIP2-City', 'Lab-City.mmdb'], ['GeoLite2-ASN', 'Lab-ASN.mmdb']) {
    my ($type, $name) = @$_;
    my ($path, $tmp) = ("$out_dir/$name", "$out_dir/.$name.tmp$$");
    open my $fh, '>:raw', $tmp or fail("$tmp: $!");
    $tree{$type}->write_tree($fh);
    close $fh or fail("$tmp: $!");
    rename $tmp, $path or fail("$path: $!");
}
