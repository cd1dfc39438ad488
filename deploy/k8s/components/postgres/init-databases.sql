-- Run once, by the postgres image's entrypoint, when the data volume is first created.
-- One database per service; no service can see another's tables.
CREATE DATABASE qudao_identity;
CREATE DATABASE qudao_registration;
CREATE DATABASE qudao_order;
CREATE DATABASE qudao_flow;
CREATE DATABASE qudao_incentive;
CREATE DATABASE qudao_engagement;
