import kafkajs, { type Admin, type Kafka } from 'kafkajs';

const { AssignerProtocol } = kafkajs;

/** The consumer groups that read a subject's topic right now (empty: nothing running uses it). */
export type SubjectUsage = (subject: string) => Promise<readonly string[]>;

/** The topic of a TopicNameStrategy subject (`<topic>-value` or `<topic>-key`); undefined for other strategies. */
export function topicOfSubject(subject: string): string | undefined {
  const match = /^(.+)-(value|key)$/.exec(subject);
  return match?.[1];
}

/**
 * Which running consumers use a subject, asked of Kafka itself: a subject is in use while a
 * consumer group with live members subscribes to its topic (a running `sluice up` subscribes its
 * sink to every topic of its topology; stages, `sluice run`, tail and model watchers to theirs).
 * Nothing has to register or renew anything, and a stopped stack stops counting at once.
 */
export function consumerGroupUsage(kafka: Kafka): { readonly usage: SubjectUsage; close(): Promise<void> } {
  let admin: Promise<Admin> | undefined;
  const connected = (): Promise<Admin> => {
    admin ??= (async () => {
      const created = kafka.admin();
      await created.connect();
      return created;
    })();
    admin.catch(() => {
      admin = undefined;
    });
    return admin;
  };
  return {
    async usage(subject) {
      const topic = topicOfSubject(subject);
      if (topic === undefined) return [];
      const client = await connected();
      const { groups } = await client.listGroups();
      const consumers = groups.filter((group) => group.protocolType === 'consumer').map((group) => group.groupId);
      if (consumers.length === 0) return [];
      const described = await client.describeGroups(consumers);
      return described.groups
        .filter((group) => group.members.length > 0)
        .filter((group) =>
          group.members.some((member) => {
            const subscribed = AssignerProtocol.MemberMetadata.decode(member.memberMetadata)?.topics ?? [];
            const assigned = Object.keys(AssignerProtocol.MemberAssignment.decode(member.memberAssignment)?.assignment ?? {});
            return subscribed.includes(topic) || assigned.includes(topic);
          }),
        )
        .map((group) => `${group.groupId} (${group.members.length} member${group.members.length === 1 ? '' : 's'})`)
        .sort();
    },
    async close() {
      const current = admin;
      admin = undefined;
      if (current) await (await current.catch(() => undefined))?.disconnect();
    },
  };
}
