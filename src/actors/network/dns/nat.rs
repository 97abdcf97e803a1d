//! The DNAT from `127.0.0.11:53` to the server's ports, inside a container's namespace.
//!
//! dockerd binds its resolver on 127.0.0.11 at random ports and has iptables rewrite
//! port 53 to them inside the container's namespace, so that port 53 stays free for a
//! process of the container (a DNS server of its own on 0.0.0.0:53). berthd does the
//! same with one nf_tables transaction sent over netlink from the thread that made the
//! sockets (so it acts in the container's namespace): a table `berth_dns` with a nat
//! chain on the output hook and two rules,
//!
//! ```text
//! table ip berth_dns {
//!     chain output { type nat hook output priority -100; policy accept;
//!         meta l4proto udp ip daddr 127.0.0.11 udp dport 53 dnat to 127.0.0.11:<udp port>
//!         meta l4proto tcp ip daddr 127.0.0.11 tcp dport 53 dnat to 127.0.0.11:<tcp port>
//!     }
//! }
//! ```
//!
//! Replies are rewritten back to port 53 by conntrack. Running `iptables-restore` there
//! instead (dockerd's way) costs a process and 15-20 ms per start on this host
//! (nf_tables backend); the netlink transaction costs about 0.2 ms. The messages are built with
//! netlink-packet-netfilter (the rust-netlink family rtnetlink belongs to); only the
//! `nat` expression, which that crate does not model, is spelled as raw attributes.

use std::io;
use std::net::Ipv4Addr;

use netlink_packet_core::{
    DefaultNla, NLM_F_ACK, NLM_F_CREATE, NLM_F_REQUEST, NetlinkBuffer, NetlinkMessage,
    NetlinkPayload,
};
use netlink_packet_netfilter::nftables::{
    ChainAttribute, Cmp, DataAttribute, Expressions, Hook, Immediate, InetHookNumber, Meta,
    MetaKey, NfTablesMessage, Operator, Payload, Register, RuleAttribute, RuleMessage,
    TableAttribute, TableMessage,
};
use netlink_packet_netfilter::{NetfilterHeader, NetfilterMessage, NetfilterProtoFamily};
use netlink_packet_netfilter::{
    nftables::{ChainMessage, ListAttribute},
    none::ControlMessage,
};

const TABLE: &str = "berth_dns";
const CHAIN: &str = "output";

/// `NF_IP_PRI_NAT_DST`: where iptables' nat OUTPUT chain sits.
const PRIORITY_NAT_DST: i32 = -100;

// From linux/netfilter/nf_tables.h.
const NFT_PAYLOAD_NETWORK_HEADER: u32 = 1;
const NFT_PAYLOAD_TRANSPORT_HEADER: u32 = 2;
const NFTA_NAT_TYPE: u16 = 1;
const NFTA_NAT_FAMILY: u16 = 2;
const NFTA_NAT_REG_ADDR_MIN: u16 = 3;
const NFTA_NAT_REG_PROTO_MIN: u16 = 5;
const NFT_NAT_DNAT: u32 = 1;
const NFPROTO_IPV4: u32 = 2;
const NFT_REG_1: u32 = 1;
const NFT_REG_2: u32 = 2;

/// Sends `127.0.0.11:53` (UDP to `udp_port`, TCP to `tcp_port`, both on `ip`) in the
/// calling thread's network namespace; replaces what an earlier call put there.
pub fn redirect_port_53(ip: Ipv4Addr, udp_port: u16, tcp_port: u16) -> io::Result<()> {
    let mut msgs = [
        control(ControlMessage::BatchBegin),
        // Table and chain are made if missing and kept if there (no NLM_F_EXCL), the
        // chain flushed. (Deleting the table instead makes the kernel's commit wait
        // about 15 ms; this transaction takes about 0.2 ms.)
        nft(NfTablesMessage::NewTable(table()), NLM_F_CREATE),
        nft(
            NfTablesMessage::NewChain(ChainMessage {
                attributes: vec![
                    ChainAttribute::Table(TABLE.into()),
                    ChainAttribute::Name(CHAIN.into()),
                    ChainAttribute::Type("nat".into()),
                    ChainAttribute::Policy(1), // NF_ACCEPT
                    ChainAttribute::Hook(vec![
                        Hook::Number(InetHookNumber::LocalOut.into()),
                        Hook::Priority(u32::from_ne_bytes(PRIORITY_NAT_DST.to_ne_bytes())),
                    ]),
                ],
            }),
            NLM_F_CREATE,
        ),
        // Flush the chain: rules an earlier call put there go.
        nft(
            NfTablesMessage::DeleteRule(RuleMessage {
                attributes: vec![
                    RuleAttribute::Table(TABLE.into()),
                    RuleAttribute::Chain(CHAIN.into()),
                ],
            }),
            0,
        ),
        nft(rule(libc::IPPROTO_UDP, ip, udp_port), NLM_F_CREATE),
        nft(rule(libc::IPPROTO_TCP, ip, tcp_port), NLM_F_CREATE),
        control(ControlMessage::BatchEnd),
    ];
    let mut out = Vec::new();
    for (seq, m) in (1u32..).zip(msgs.iter_mut()) {
        m.header.sequence_number = seq;
        m.finalize();
        let start = out.len();
        out.resize(start + m.buffer_len(), 0);
        m.serialize(&mut out[start..]);
    }
    // Every message but the batch markers asks for an ack.
    let expected = msgs.len() - 2;

    let mut sock = netlink_sys::Socket::new(netlink_sys::protocols::NETLINK_NETFILTER)?;
    sock.bind_auto()?;
    // The kernel handles the batch within the send, so every ack is queued when it
    // returns: a non-blocking read never waits.
    sock.set_non_blocking(true)?;
    sock.send(&out, 0)?;
    let mut acked = 0;
    while acked < expected {
        let mut buf = vec![0u8; 8192];
        let n = sock.recv(&mut &mut buf[..], 0)?;
        let mut at = 0;
        while at < n {
            let frame = NetlinkBuffer::new_checked(&buf[at..n])
                .map_err(|e| io::Error::other(e.to_string()))?;
            let len = usize::try_from(frame.length()).unwrap_or(0);
            let msg = NetlinkMessage::<NetfilterMessage>::deserialize(&buf[at..at + len])
                .map_err(|e| io::Error::other(e.to_string()))?;
            if let NetlinkPayload::Error(e) = msg.payload {
                if let Some(code) = e.code {
                    return Err(io::Error::from_raw_os_error(-code.get()));
                }
                acked += 1;
            }
            if len == 0 {
                break;
            }
            at += (len + 3) & !3;
        }
    }
    Ok(())
}

fn table() -> TableMessage {
    TableMessage {
        attributes: vec![TableAttribute::Name(TABLE.into())],
    }
}

fn control(m: ControlMessage) -> NetlinkMessage<NetfilterMessage> {
    let mut msg = NetlinkMessage::from(NetfilterMessage::new(
        NetfilterHeader::new(
            NetfilterProtoFamily::Unspec,
            0,
            libc::NFNL_SUBSYS_NFTABLES as u16,
        ),
        m,
    ));
    msg.header.flags = NLM_F_REQUEST;
    msg
}

fn nft(m: NfTablesMessage, flags: u16) -> NetlinkMessage<NetfilterMessage> {
    let mut msg = NetlinkMessage::from(NetfilterMessage::new(
        NetfilterHeader::new(NetfilterProtoFamily::IPv4, 0, 0),
        m,
    ));
    msg.header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
    msg
}

fn be32(v: u32) -> Vec<u8> {
    v.to_be_bytes().to_vec()
}

/// `meta l4proto P ip daddr IP th dport 53 dnat to IP:port`.
fn rule(proto: i32, ip: Ipv4Addr, port: u16) -> NfTablesMessage {
    let proto = u8::try_from(proto).unwrap_or(0);
    let cmp_eq = |value: Vec<u8>| -> ListAttribute<_> {
        Expressions::Cmp(vec![
            Cmp::SourceRegister(Register::Reg1),
            Cmp::Op(Operator::Equal),
            Cmp::Data(DataAttribute::Value(value)),
        ])
        .into()
    };
    let load = |base: u32, offset: u32, len: u32| -> ListAttribute<_> {
        Expressions::Payload(vec![
            Payload::DestinationRegister(Register::Reg1),
            Payload::Base(base),
            Payload::Offset(offset),
            Payload::Len(len),
        ])
        .into()
    };
    let immediate = |reg: Register, value: Vec<u8>| -> ListAttribute<_> {
        Expressions::Immediate(vec![
            Immediate::DestinationRegister(reg),
            Immediate::Data(DataAttribute::Value(value)),
        ])
        .into()
    };
    NfTablesMessage::NewRule(RuleMessage {
        attributes: vec![
            RuleAttribute::Table(TABLE.into()),
            RuleAttribute::Chain(CHAIN.into()),
            RuleAttribute::Expressions(vec![
                Expressions::Meta(vec![
                    Meta::Key(MetaKey::L4Proto),
                    Meta::DestinationRegister(Register::Reg1),
                ])
                .into(),
                cmp_eq(vec![proto]),
                // The IPv4 destination address: bytes 16..20 of the header.
                load(NFT_PAYLOAD_NETWORK_HEADER, 16, 4),
                cmp_eq(ip.octets().to_vec()),
                // The UDP or TCP destination port: bytes 2..4.
                load(NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2),
                cmp_eq(53u16.to_be_bytes().to_vec()),
                immediate(Register::Reg1, ip.octets().to_vec()),
                immediate(Register::Reg2, port.to_be_bytes().to_vec()),
                Expressions::Other {
                    expression_type: "nat".into(),
                    attributes: vec![
                        DefaultNla::new(NFTA_NAT_TYPE, be32(NFT_NAT_DNAT)),
                        DefaultNla::new(NFTA_NAT_FAMILY, be32(NFPROTO_IPV4)),
                        DefaultNla::new(NFTA_NAT_REG_ADDR_MIN, be32(NFT_REG_1)),
                        DefaultNla::new(NFTA_NAT_REG_PROTO_MIN, be32(NFT_REG_2)),
                    ],
                }
                .into(),
            ]),
        ],
    })
}
