/** The authority's side of distribution: the AuthorityFeed service distributors subscribe to. */
export { type AuthorityFeedOptions, AuthorityFeedServer } from "./feed-server.js";
