/** The newsletter every fan-out benchmark sends: the same text for the baseline and for Crier. */

export const SUBJECT = 'Your {{name}} newsletter';
export const BODY = `# Hello {{name}}

This month the team held **twelve** community meetings across the county and
answered 340 questions about roads, burglary and rural crime.

- New patrols in [Rugby](https://example.org/rugby)
- Grants: applications open until the end of the month
- Consultation: *have your say* on the police and crime plan

Thank you for reading.
`;
